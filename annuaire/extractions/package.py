"""Writing one extraction ZIP atomically, hashing and counting as it goes.

A reader (the download endpoint, a mirror, the local sync) must never see a
half-written file: members are streamed into `<name>.zip.tmp-<pid>` in the
target directory and the finished archive is moved into place with
`os.replace`, which is atomic on one file system. The manifest is written the
same way, after the zip, so a manifest always describes a complete zip.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from annuaire import formats
from annuaire.extractions import pace
from annuaire.nationalfiles.manifest import MemberInfo, sha256_file

if TYPE_CHECKING:
    from annuaire.progress import Steps

# Level 1 deflate: about 3x faster than the default for ~10 % larger files.
COMPRESS_LEVEL = 1
CHUNK_LINES = 20_000


@dataclass
class ArchiveInfo:
    name: str
    bytes: int = 0
    sha256: str = ""
    members: list[MemberInfo] = field(default_factory=list)


class MemberWriter:
    """One `.txt` member being streamed: encodes, hashes, counts lines, compresses.

    Hashing and deflating run in a helper thread (hashlib and zlib release the
    GIL on large buffers), so rendering lines and compressing them use two
    cores; a bounded queue keeps memory flat.
    """

    def __init__(self, stream, info: MemberInfo, progress: Steps | None = None) -> None:
        self._stream = stream
        self._progress = progress
        self._hash = hashlib.sha256()
        self.info = info
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="extraction-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so that the producer never blocks
            try:
                self._hash.update(data)
                self._stream.write(data)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the producer
                self._error = exc

    def write_text(self, text: str, lines: int) -> None:
        if self._error is not None:
            raise self._error
        data = text.encode("utf-8")
        self._queue.put(data)
        self.info.bytes += len(data)
        self.info.lines += lines
        if self._progress is not None and lines:
            self._progress.advance(lines)

    def write_lines(self, lines: Iterable[str]) -> None:
        """Write already terminated lines, in chunks (one encode per chunk)."""
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= CHUNK_LINES:
                self.write_text("".join(chunk), len(chunk))
                chunk = []
        if chunk:
            self.write_text("".join(chunk), len(chunk))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._stream.close()
        self.info.sha256 = self._hash.hexdigest()

    def abort(self) -> None:
        """Stop the helper thread after a failure of the producer."""
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("aborted")
            self._queue.put(None)
            self._thread.join()


class AtomicArchive:
    """`with AtomicArchive(outdir, name, ts) as archive:` writes `<name>_<ts>.zip`.

    On an exception the temporary file is removed and nothing appears.
    """

    def __init__(self, outdir: Path, name: str, ts: str, progress: Steps | None = None,
                 expected: dict[str, int] | None = None) -> None:
        """`progress`: a step per member file, of `expected[kind]` lines (annuaire.extractions.pace)."""
        self.progress = progress
        self.expected = expected or {}
        self.outdir = Path(outdir)
        self.name = name
        self.ts = ts
        self.path = self.outdir / formats.file_name(name, ts, "zip")
        self._tmp = self.outdir / f".{self.path.name}.tmp-{os.getpid()}"
        self.info = ArchiveInfo(self.path.name)
        self._zip: zipfile.ZipFile | None = None
        self._members: list[MemberWriter] = []

    def __enter__(self) -> Self:
        self.outdir.mkdir(parents=True, exist_ok=True)
        self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
        return self

    def member(self, kind: str, header: str) -> MemberWriter:
        """Open `<kind>_<ts>.txt` and write its header line (not counted)."""
        assert self._zip is not None
        info = MemberInfo(formats.file_name(kind, self.ts, "txt"))
        zinfo = zipfile.ZipInfo(info.name, date_time=_zip_time(self.ts))
        zinfo.compress_type = zipfile.ZIP_DEFLATED
        zinfo._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # (public name from 3.13)
        zinfo.external_attr = 0o644 << 16
        if self.progress is not None:
            lines = self.expected.get(kind, 0)
            self.progress.start(f"Writing {info.name}", lines, pace.weight(kind, lines), unit="lines")
        writer = MemberWriter(self._zip.open(zinfo, "w", force_zip64=True), info, self.progress)
        self._members.append(writer)
        writer.write_text(header, 0)
        self.info.members.append(info)
        return writer

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._zip is not None
        if exc_type is not None:
            for member in self._members:
                member.abort()
        try:
            self._zip.close()
        except Exception:
            if exc_type is None:
                raise
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        _fsync(self._tmp)
        self.info.bytes = self._tmp.stat().st_size
        self.info.sha256 = sha256_file(self._tmp)
        os.replace(self._tmp, self.path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a small file so that readers see the old or the new content only."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _zip_time(ts: str) -> tuple[int, int, int, int, int, int]:
    return (int(ts[0:4]), int(ts[4:6]), int(ts[6:8]), int(ts[8:10]), int(ts[10:12]), 0)


_UNSAFE = str.maketrans({"|": " ", "\n": " ", "\r": " "})


def render(values: tuple | list, separators: int, trailing: bool = False) -> str:
    """One `|`-separated line; None is empty, and a stray `|` or newline in a
    value (free text from an operator) becomes a space rather than a broken line."""
    line = "|".join([v or "" for v in values])
    if line.count("|") != separators or "\n" in line or "\r" in line:
        line = "|".join([(v or "").translate(_UNSAFE) for v in values])
    return line + ("|\n" if trailing else "\n")
