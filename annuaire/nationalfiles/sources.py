"""Recognising national files: `<Kind>_<YYYYMMDDhhmm>.txt`, alone or inside a zip.

A zip may hold only recognised files: anything else means it is not a national
extraction, and the import stops before reading anything.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.nationalfiles.inflate import open_member
from annuaire.nationalfiles.layouts import KNOWN_LAYOUTS


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
        """How errors name the file: `X.zip:X.txt` for a member."""
        return f"{self.path.name}:{self.member}" if self.member else self.path.name

    def open(self) -> io.BufferedIOBase:
        if self.member is None:
            return open(self.path, "rb")
        return open_member(self.path, self.member)  # type: ignore[return-value]  # a zip member stream reads like the file object


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
