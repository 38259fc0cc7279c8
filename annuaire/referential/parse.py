"""From the lines of the national files to records: the store-free part of an import.

These generators do the CPU-heavy work of an import (decoding, splitting,
picking columns, digests, natural keys, unknown-code counts) without
touching the store; the importer applies their chunks of a few thousand
records. The last chunk carries the unknown codes.

Measured and dropped: running them in worker processes (the chunks pickled
back through a pipe). At national scale the import was no faster and the
refresh slower (63 s against 51 s): pickling and unpickling every record
cost more than the parsing saved on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter

from annuaire.errors import ImportFileError
from annuaire.referential import records
from annuaire.referential.reader import Lines, Source
from annuaire.store.digest import digest

CHUNK = 5_000  # lines per chunk

Record = tuple[str, tuple[str, ...], int]  # natural key, values, digest
Unknown = dict[tuple[str, str], list[int]]  # (column, code) -> [count, first line]


@dataclass
class ActivityChunk:
    """Records of some lines of Personne_activite, in file order.

    A person or structure comes in the chunk of the first line naming it:
    apply a chunk's persons and structures before its activities.
    """

    read: int = 0  # bytes read since the previous chunk (progress)
    persons: list[Record] = field(default_factory=list)
    structures: list[Record] = field(default_factory=list)
    activities: list[tuple[str, str, str, tuple[str, ...], int]] = field(default_factory=list)  # key, id_nat, tech, …
    unknown: Unknown | None = None  # in the last chunk


@dataclass
class ChildChunk:
    """Records of some lines of SavoirFaire or Dipl_AutExerc: (key, id_nat, line number, values, digest)."""

    read: int = 0
    records: list[tuple[str, str, int, tuple[str, ...], int]] = field(default_factory=list)
    unknown: Unknown | None = None


class _Progress:
    """Bytes read since the last chunk."""

    def __init__(self) -> None:
        self.read = 0

    def __call__(self, amount: int) -> None:
        self.read += amount

    def take(self) -> int:
        read, self.read = self.read, 0
        return read


def _numbered(keys: set[str], base: str) -> str:
    """`base` + the first number not yet used: lines with the same natural fields stay distinct."""
    n = 0
    key = base + "0"
    while key in keys:
        n += 1
        key = base + str(n)
    keys.add(key)
    return key


def activity_chunks(source: Source, known: dict[str, frozenset[str]]) -> Iterator[ActivityChunk]:
    """Persons, structures and activities of a Personne_activite file."""
    progress = _Progress()
    lines = Lines(source, progress)
    persons: set[str] = set()
    structures: set[str] = set()
    activity_keys: set[str] = set()
    chunk = ActivityChunk()
    codes = None
    for line_no, fields in lines:
        if codes is None:
            index = lines.column_index()
            pick_person = records.picker(index, records.PERSON)
            pick_structure = records.picker(index, records.STRUCTURE)
            pick_activity = records.picker(index, records.ACTIVITY)
            i_idnat, i_tech = index[records.ID_NAT], index[records.TECH_ID]
            codes = CodeCount(index, known)
        id_nat = fields[i_idnat]
        if not id_nat:
            raise ImportFileError(source.label, "empty 'Identification nationale PP'", line_no)
        codes(fields, line_no)
        if id_nat not in persons:
            persons.add(id_nat)
            values = pick_person(fields)
            chunk.persons.append((id_nat, values, digest(values)))
        tech = fields[i_tech]
        if tech and tech not in structures:
            structures.add(tech)
            values = pick_structure(fields)
            chunk.structures.append((tech, values, digest(values)))
        values = pick_activity(fields)
        chunk.activities.append((_numbered(activity_keys, f"{id_nat}|{tech}|"), id_nat, tech, values, digest(values)))
        if len(chunk.activities) >= CHUNK:
            chunk.read = progress.take()
            yield chunk
            chunk = ActivityChunk()
    chunk.read = progress.take()
    chunk.unknown = codes.unknown() if codes else {}
    yield chunk


def child_chunks(source: Source, known: dict[str, frozenset[str]], mapping: dict[str, str]) -> Iterator[ChildChunk]:
    """Savoir-faire (records.SKILL) or diplomas (records.DIPLOMA), keyed by person and content."""
    progress = _Progress()
    lines = Lines(source, progress)
    keys: set[str] = set()
    natural = slice(4, None, 2) if mapping is records.SKILL else slice(0, None, 2)  # the code columns
    chunk = ChildChunk()
    codes = None
    for line_no, fields in lines:
        if codes is None:
            index = lines.column_index()
            pick = records.picker(index, mapping)
            i_idnat = index[records.ID_NAT]
            codes = CodeCount(index, known)
        codes(fields, line_no)
        id_nat = fields[i_idnat]
        values = pick(fields)
        key = _numbered(keys, f"{id_nat}|{'|'.join(values[natural])}|")
        chunk.records.append((key, id_nat, line_no, values, digest(values)))
        if len(chunk.records) >= CHUNK:
            chunk.read = progress.take()
            yield chunk
            chunk = ChildChunk()
    chunk.read = progress.take()
    chunk.unknown = codes.unknown() if codes else {}
    yield chunk


class CodeCount:
    """Unknown codes of one file's coded columns.

    Lines repeat a few thousand combinations of codes: each distinct
    combination is counted with one dict lookup per line and checked
    against the nomenclatures once, at the end.
    """

    def __init__(self, index: dict[str, int], known: dict[str, frozenset[str]]) -> None:
        self.checked = [
            (index[column], column, known[tre])
            for column, tre in records.CODED_COLUMNS.items()
            if column in index and tre in known
        ]
        positions = [i for i, _, _ in self.checked]
        self.pick = itemgetter(*positions) if len(positions) > 1 else (lambda fields: tuple(fields[i] for i in positions))
        self.combos: dict[tuple[str, ...], list[int]] = {}  # combination -> [count, first line]

    def __call__(self, fields: list[str], line_no: int) -> None:
        combo = self.pick(fields)
        seen = self.combos.get(combo)
        if seen is None:
            self.combos[combo] = [1, line_no]
        else:
            seen[0] += 1

    def unknown(self) -> Unknown:
        found: Unknown = {}
        for combo, (count, first) in self.combos.items():
            for (_, column, known), code in zip(self.checked, combo):
                if code and code not in known:
                    merge_unknown(found, {(column, code): [count, first]})
        return found


def merge_unknown(into: Unknown, other: Unknown) -> None:
    for where, (count, first) in other.items():
        seen = into.setdefault(where, [0, first])
        seen[0] += count
        seen[1] = min(seen[1], first)
