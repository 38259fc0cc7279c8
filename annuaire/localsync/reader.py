"""Reading and checking an MSSanté extraction before anything is written.

The whole file is validated first (zip readable, header, field count of every
line, a mail address on every line, SHA-256 and line count against the
manifest when there is one); only then does the sync write anything
(`read_member` inflates the file, in a thread beside the read of the stored
digests; `parse_member` validates and selects the lines).

Speed matters (535,000 lines every day, most of them unchanged): lines stay
bytes, are counted and hashed as bytes, and only the lines that changed are
decoded and split into fields later. A file whose header has the national
column order is read on this fast path; any other order (columns are found
by header name) goes through a slower path that rebuilds each line in the
national order first.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.localsync.filters import Filters
from annuaire.nationalfiles.encoding import Decoding, check_nul
from annuaire.nationalfiles.layouts import parse_header
from annuaire.nationalfiles.manifest import Manifest, expected_member
from annuaire.nationalfiles.sources import Source, find_sources
from annuaire.store.digest import fingerprints

_ADDRESS = formats.MSSANTE_COLUMNS.index("Adresse BAL")


@dataclass
class Extraction:
    label: str
    ts: str
    encoding: str = "utf-8"
    lines: int = 0  # data lines read
    duplicates: int = 0  # lines whose address was already seen (first one kept)
    # selected lines: address -> digest, and address -> raw line (national column order, no trailing '|')
    digests: dict[str, int] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)

    def fields(self, raw: bytes) -> list[str]:
        """The 31 values of a selected line, address lowercased."""
        values = raw.decode(self.encoding).split("|")
        values[_ADDRESS] = values[_ADDRESS].strip().lower()
        return values


def line_digests(lines: list[bytes]) -> list[int]:
    """64-bit content hash of each line, stored (signed) beside each national contact."""
    return [f - (1 << 63) for f in fingerprints(lines)]


def _read_member(source: Source) -> bytes:
    try:
        with source.open() as stream:
            return stream.read()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ImportFileError(source.label, f"corrupt or truncated archive ({exc})") from exc


@dataclass
class Member:
    """The extraction file's bytes, read and checked against its manifest."""

    source: Source
    data: bytes
    label: str
    expected_lines: int | None


def read_member(path: Path, manifest: Manifest | None = None, label: str | None = None) -> Member:
    """Find, check and inflate the extraction at `path`. The heavy parts (SHA-256,
    inflate) run in C without the GIL: another thread can work meanwhile."""
    label = label or str(path)
    sources = [s for s in find_sources([path]) if s.kind == formats.MSSANTE]
    if len(sources) != 1:
        raise ImportFileError(label, f"expected one {formats.MSSANTE}_<ts>.txt file, found {len(sources)}")
    source = sources[0]
    expected = None
    if manifest is not None:
        expected = expected_member(path, source.member, manifest, formats.MSSANTE, label)
    return Member(source, _read_member(source), label, expected.lines if expected is not None else None)


def parse_member(member: Member, filters: Filters, progress: Callable[[int], None] | None = None) -> Extraction:
    """Validate every line of the extraction and return the lines the filters select."""
    source, data = member.source, member.data
    if progress:
        progress(len(data))
    extraction = Extraction(label=member.label, ts=source.ts, encoding=_encoding(data, source))
    _parse(data, source, filters, extraction)
    if member.expected_lines is not None and member.expected_lines != extraction.lines:
        raise ImportFileError(
            source.label, f"{extraction.lines} data lines where the manifest announces {member.expected_lines}"
        )
    return extraction


def _encoding(data: bytes, source: Source) -> str:
    """The national files' encoding rule (`nationalfiles/encoding.py`), on the whole file."""
    check_nul(data, source.label)
    return Decoding(source.label).check(data)


def _header(data: bytes, source: Source, encoding: str) -> tuple[list[str], bool]:
    """(column names, trailing '|'), checked like every reader checks them."""
    end = data.find(b"\n")
    if end < 0:
        end = len(data)
    header = parse_header(data[:end].decode(encoding).rstrip("\r"), source.kind, source.label)
    return list(header.names), header.trailing


def _parse(data: bytes, source: Source, filters: Filters, out: Extraction) -> None:
    """Whole-list operations (split, count, map) rather than a Python loop per line."""
    names, trailing = _header(data, source, out.encoding)
    width = len(names) + (1 if trailing else 0)
    separators = width - 1
    label = source.label
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    lines = data.split(b"\n")
    del lines[0]  # the header
    if lines and not lines[-1]:
        lines.pop()  # the newline ending the last line
    numbers: list[int] | None = None  # file line numbers, once lines were removed
    counts = list(map(bytes.count, lines, repeat(b"|")))
    if counts.count(separators) != len(lines):
        lines, numbers = _check_counts(lines, counts, separators, trailing, label)
    elif trailing:
        lines = _strip_trailing(lines, None, label)
    out.lines = len(lines)
    if tuple(names) != formats.MSSANTE_COLUMNS:  # another column order: rebuild in the national one
        picks = [names.index(c) for c in formats.MSSANTE_COLUMNS]
        lines = [b"|".join([fields[i] for i in picks]) for fields in (line.split(b"|") for line in lines)]
    addresses = [line.split(b"|", _ADDRESS + 1)[_ADDRESS] for line in lines]
    if not all(b"@" in a for a in addresses):
        i = next(i for i, a in enumerate(addresses) if b"@" not in a)
        line_no = numbers[i] if numbers else i + 2
        raise ImportFileError(label, f"'Adresse BAL' {addresses[i].decode(out.encoding)!r} is not a mail address", line_no)
    match = filters.bytes_matcher(out.encoding)
    if match is not None:
        kept = [i for i, line in enumerate(lines) if match(line.split(b"|"))]
        lines = [lines[i] for i in kept]
        addresses = [addresses[i] for i in kept]
    keys = b"\n".join(addresses).decode(out.encoding).lower().split("\n") if addresses else []
    keys = [k.strip() for k in keys]
    digests = line_digests(lines)
    # The first line of an address wins: fill in reverse, later lines are overwritten.
    keys.reverse()
    digests.reverse()
    lines.reverse()
    out.digests = dict(zip(keys, digests, strict=False))
    out.raw = dict(zip(keys, lines, strict=False))
    out.duplicates = len(keys) - len(out.digests)


def _check_counts(
    lines: list[bytes], counts: list[int], separators: int, trailing: bool, label: str
) -> tuple[list[bytes], list[int]]:
    """The slow path: empty lines dropped, a tolerated trailing '|' removed, errors located."""
    kept: list[bytes] = []
    numbers: list[int] = []
    for i, (line, count) in enumerate(zip(lines, counts, strict=False)):
        if not line:
            continue
        if count != separators:
            # A trailing separator is tolerated on a layout that has none.
            if not trailing and count == separators + 1 and line.endswith(b"|"):
                line = line[:-1]
            else:
                raise ImportFileError(label, f"{count + 1} fields where the header has {separators + 1}", i + 2)
        kept.append(line)
        numbers.append(i + 2)
    if trailing:
        kept = _strip_trailing(kept, numbers, label)
    return kept, numbers


def _strip_trailing(lines: list[bytes], numbers: list[int] | None, label: str) -> list[bytes]:
    if not all(line.endswith(b"|") for line in lines):
        i = next(i for i, line in enumerate(lines) if not line.endswith(b"|"))
        raise ImportFileError(label, "missing the trailing '|' of this layout", numbers[i] if numbers else i + 2)
    return [line[:-1] for line in lines]
