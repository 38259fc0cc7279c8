"""Reading the national `|`-separated files: sources, encodings, headers, lines.

A source is a `.txt` file or a member of a `.zip`. Files are recognised by
name (`<Kind>_<YYYYMMDDhhmm>.txt`) and their header is checked against the
known layouts; columns are then found by header name, never by position.
Every problem raises ImportFileError naming the file and the line.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.inflate import open_member
from annuaire.referential import records
from annuaire.referential.groups import Groups, ShortLine

BLOCK = 1 << 22  # bytes read and decoded at once
# The longest legitimate line: 56 fields of at most a few hundred characters (the longest line of
# a national Personne_activite is under 1.5 KB). Anything longer is not a national file, and a
# file without line ends must not be read into memory whole.
MAX_LINE = 64 << 10

KNOWN_LAYOUTS: dict[str, tuple[tuple[str, ...], ...]] = {
    formats.PERSONNE_ACTIVITE: (formats.PERSONNE_ACTIVITE_COLUMNS, formats.PERSONNE_ACTIVITE_COLUMNS_OLD),
    formats.SAVOIR_FAIRE: (formats.SAVOIR_FAIRE_COLUMNS,),
    formats.DIPLOMES: (formats.DIPLOMES_COLUMNS,),
    formats.MSSANTE: (formats.MSSANTE_COLUMNS,),
}


@dataclass(frozen=True)
class Source:
    """One national text file, on disk or inside a zip."""

    kind: str  # formats.PERSONNE_ACTIVITE, …
    ts: str  # YYYYMMDDhhmm from the name
    path: Path  # the .txt or the .zip
    member: str | None = None  # name inside the zip
    size: int = 0  # uncompressed bytes, for progress

    @property
    def label(self) -> str:
        return f"{self.path.name}:{self.member}" if self.member else self.path.name

    def open(self) -> io.BufferedIOBase:
        if self.member is None:
            return open(self.path, "rb")
        return open_member(self.path, self.member)  # type: ignore[return-value]


def find_sources(paths: list[Path]) -> list[Source]:
    """Expand the given files (zips or txts) into recognised sources."""
    sources: list[Source] = []
    for path in paths:
        if not path.exists():
            raise ImportFileError(str(path), "no such file")
        if path.suffix.lower() == ".zip":
            sources.extend(_zip_sources(path))
            continue
        parsed = formats.parse_file_name(path.name)
        if parsed is None or parsed[0] not in KNOWN_LAYOUTS:
            raise ImportFileError(
                path.name,
                "not a national extraction file name (expected e.g. PS_LibreAcces_Personne_activite_YYYYMMDDhhmm.txt)",
            )
        sources.append(Source(parsed[0], parsed[1], path, None, path.stat().st_size))
    return sources


def _zip_sources(path: Path) -> list[Source]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ImportFileError(path.name, f"not a readable zip archive ({exc}); is it truncated?") from exc
    found = []
    for info in infos:
        if info.is_dir():
            continue
        parsed = formats.parse_file_name(info.filename)
        if parsed is None or parsed[0] not in KNOWN_LAYOUTS:
            raise ImportFileError(f"{path.name}:{info.filename}", "unexpected file in the archive")
        found.append(Source(parsed[0], parsed[1], path, info.filename, info.file_size))
    if not found:
        raise ImportFileError(path.name, "the archive holds no national extraction file")
    return found


class Undecodable(Exception):
    """A line selected from a block that was not decoded is not in the file's encoding."""


class Lines:
    """Decoded, split lines of one source, checked against its header.

    Encoding: UTF-8; a file whose first invalid byte comes before any
    multi-byte UTF-8 character is read as latin-1 (old extractions). Invalid
    UTF-8 after valid multi-byte characters is a corrupt file: error.
    """

    def __init__(self, source: Source, progress: Callable[[int], None] | None = None) -> None:
        self.source = source
        self.progress = progress
        self.header: tuple[str, ...] = ()
        self.header_line = ""
        self.trailing = False
        self._encoding = "utf-8"
        self._seen_multibyte = False

    def read_header(self) -> str:
        """The header line, read (and checked) before the rest: it decides how the rest is read."""
        if not self.header:
            for _ in self._block_lines():
                break
        return self.header_line

    def column_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.header)}

    def _decode(self, data: bytes, lines_before: int) -> str:
        """Decode a block of whole lines (read in blocks: per-line decoding costs 1 µs a line)."""
        if self._encoding == "utf-8":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line_start = data.rfind(b"\n", 0, exc.start) + 1
                if self._seen_multibyte or not data[:line_start].isascii():
                    raise ImportFileError(
                        self.source.label,
                        f"invalid UTF-8 byte 0x{data[exc.start]:02x} at column {exc.start - line_start + 1}",
                        lines_before + data.count(b"\n", 0, exc.start) + 1,
                    ) from exc
                self._encoding = "latin-1"
                return data.decode("latin-1")
            if not self._seen_multibyte and not text.isascii():
                self._seen_multibyte = True
            return text
        return data.decode("latin-1")

    def _blocks(self, stream: io.BufferedIOBase, decode: bool = True) -> Iterator[tuple[int, bytes, str | None]]:
        """(lines before, raw bytes, decoded text) of blocks of whole lines. Decoding a block
        checks its encoding; line ends are normalised to "\\n" in the text. Without `decode`
        only the first block (the header's) is decoded: the others' text is None."""
        label = self.source.label
        lines_before = 0
        rest = b""
        while True:
            block = stream.read(BLOCK)
            data = rest + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line end in a whole block
                    raise self._too_long(lines_before + 1, len(data))
                data, rest = data[:cut], data[cut:]
                if len(rest) > MAX_LINE:
                    raise self._too_long(lines_before + data.count(b"\n") + 1, len(rest))
            if not data:
                return
            if self.progress:
                self.progress(len(block))
            nul = data.find(b"\x00")
            if nul >= 0:
                line_no = lines_before + data.count(b"\n", 0, nul) + 1
                raise ImportFileError(label, "NUL byte in the line (binary or corrupt file)", line_no)
            text = None
            if decode or lines_before == 0:
                text = self._decode(data, lines_before)
                if "\r" in text:
                    text = text.replace("\r\n", "\n")
            yield lines_before, data, text
            lines_before += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            if not block:
                return

    def _too_long(self, line_no: int, size: int) -> ImportFileError:
        return ImportFileError(self.source.label, f"line longer than {MAX_LINE:,} characters (at least {size:,}): "
                                                  "not a national extraction file", line_no)

    def _block_lines(self, raw: bool = False, decode: bool = True) -> Iterator[tuple[list, Sequence[int]]]:
        """(lines, line numbers) of the data lines of each block, as text or as raw bytes
        (after the header, line 1, which is checked); empty lines are left out. The whole
        block is decoded (that checks its encoding) unless raw lines are asked without
        `decode`. `fields` checks a line."""
        label = self.source.label
        try:
            stream = self.source.open()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImportFileError(label, f"cannot open ({exc})") from exc
        empty = (b"", b"\r") if raw else ("",)
        with stream:
            line_no = 0
            try:
                for lines_before, data, text in self._blocks(stream, decode or not raw):
                    lines = data.split(b"\n") if raw else text.split("\n")
                    if data.endswith(b"\n"):
                        lines.pop()  # the empty string after the block's last line end
                    elif not raw and lines[-1].endswith("\r"):
                        lines[-1] = lines[-1][:-1]
                    first = lines_before + 1  # line number of lines[0]
                    if lines_before == 0:
                        self._read_header(text.split("\n", 1)[0].rstrip("\r").lstrip("\ufeff"))  # type: ignore[union-attr]
                        lines, first = lines[1:], 2
                    line_no = first + len(lines) - 1
                    numbers: Sequence[int] = range(first, line_no + 1)
                    if any(map(lines.__contains__, empty)):  # empty lines are left out
                        keep = [i for i, line in enumerate(lines) if line not in empty]
                        lines = [lines[i] for i in keep]
                        numbers = [first + i for i in keep]
                    yield lines, numbers
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ImportFileError(label, f"corrupt or truncated archive ({exc})", line_no + 1) from exc
            if line_no == 0 and not self.header:
                raise ImportFileError(label, "empty file (no header line)")

    @property
    def encoding(self) -> str:
        """The encoding the lines read so far were decoded with."""
        return self._encoding

    def text(self, raw: bytes) -> str:
        """A raw line of this file, decoded like its block was (or, for a line of a block not
        decoded, checked here: `Undecodable` if it is not in the file's encoding so far)."""
        try:
            text = raw.decode(self._encoding)
        except UnicodeDecodeError as exc:
            raise Undecodable from exc
        return text[:-1] if text.endswith("\r") else text

    def _checked_text(self, raw: bytes, line_no: int) -> str:
        """A raw line of a block not decoded, decoded and checked as a block of one line
        (each line is decoded once: 0.4 µs, as much again as decoding its block)."""
        text = self._decode(raw, line_no - 1)
        return text[:-1] if text.endswith("\r") else text

    def fields(self, text: str, line_no: int) -> list[str]:
        """The fields of a data line, checked against the header.

        The list has one more, empty, element after the last column: pickers
        read it for columns that an older layout lacks.
        """
        if len(text) > MAX_LINE:
            raise self._too_long(line_no, len(text))
        fields = text.split("|")
        expected = len(self.header) + (1 if self.trailing else 0)
        if len(fields) != expected:
            # A trailing separator is tolerated on files that do not require it.
            if not (len(fields) == expected + 1 and not self.trailing and fields[-1] == ""):
                raise ImportFileError(self.source.label, f"{len(fields)} fields where the header has {expected}", line_no)
        elif self.trailing:
            if fields[-1] != "":
                raise ImportFileError(self.source.label, "missing the trailing '|' of this layout", line_no)
        else:
            fields.append("")
        return fields

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (line number, fields) for every data line; line 1 is the header."""
        for texts, numbers in self._block_lines():
            for line_no, text in zip(numbers, texts):
                yield line_no, self.fields(text, line_no)

    def grouped(self, groups: Groups) -> Iterator[tuple[int, str]]:
        """(line number, text) of the lines of the persons `groups` selects, in file order;
        `groups` keeps the fingerprints of every person's lines (only the lines selected
        are split into text lines).

        When `groups` compares with the last import's fingerprints, only the selected lines
        are decoded: the others are byte for byte lines of the last imported file, which was
        read as UTF-8 (`prints` are kept for UTF-8 files only). A selected line that is not
        UTF-8 raises `Undecodable`: the file must then be read, and decoded, in full.
        Without fingerprints every line is selected, and decoded once: its block is not."""
        self.read_header()
        groups.column = self.column_index()[records.ID_NAT]
        if groups.previous is None:  # every line selected: each decoded and checked as it comes
            decoded = self._checked_text
        elif self._encoding != "utf-8":  # (the header's block was not UTF-8)
            raise Undecodable
        else:
            decoded = lambda raw, _: self.text(raw)  # noqa: E731
        try:
            for raws, numbers in self._block_lines(raw=True, decode=False):
                for line_no, raw in groups.select(raws, numbers):
                    yield line_no, decoded(raw, line_no)
            for line_no, raw in groups.select([], [], last=True):
                yield line_no, decoded(raw, line_no)
        except ShortLine as short:
            self.fields(decoded(short.raw, short.line_no), short.line_no)  # raises, naming the line
            raise
        if groups.deferred:  # persons whose lines are not all together: read again for them
            for raws, numbers in self._block_lines(raw=True, decode=False):
                for line_no, raw in groups.select_deferred(raws, numbers):
                    yield line_no, self.text(raw)

    def _read_header(self, text: str) -> None:
        self.header_line = text
        names = text.split("|")
        self.trailing = names[-1] == ""
        if self.trailing:
            names.pop()
        header = tuple(n.strip() for n in names)
        layouts = KNOWN_LAYOUTS[self.source.kind]
        if not any(set(layout) <= set(header) for layout in layouts):
            missing = [c for c in layouts[-1] if c not in header]
            raise ImportFileError(
                self.source.label,
                f"header is not a known {self.source.kind} layout (missing columns: {', '.join(missing[:5])})",
                1,
            )
        self.header = header
