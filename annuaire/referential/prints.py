"""Fingerprints of the lines of each person, kept from one referential import to the next.

A daily refresh changes about 1 % of the persons, yet every line of the three
files used to be split, digested and compared (7.35 M lines, ~35 s), and the
stored digests of every record loaded (~12 s). Each import now stores, per
file kind, one 64-bit fingerprint of the raw lines of each person (computed
at C speed while reading, see `groups.Groups`); the next import re-reads, diffs
and writes only the persons whose fingerprint changed, and leaves the records
of the others alone. The result is the one a full diff would give: a person
whose lines are byte-identical yields byte-identical records.

The fingerprints are a cache of the import, stored in the same transaction as
the records they describe. They are ignored (and the import diffs every line)
when the file's header or the line -> record mappings (`VERSION`) changed.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, insert

from annuaire.referential import records
from annuaire.store.dialect import binary_cursor
from annuaire.store.digest import digest
from annuaire.store.schema import referential_print
from annuaire.store.select import mark

if TYPE_CHECKING:
    from annuaire.nationalfiles.lines import Lines

# Bump DERIVATION when the records derived from unchanged lines would differ
# (a new search key rule, a new column…) or the fingerprints would (2: XXH3); changes of the
# mappings are seen alone.
DERIVATION = "2"
VERSION = f"{DERIVATION}-{digest(map(repr, records.MAPPINGS)) & 0xFFFFFFFF:08x}"


@dataclass(frozen=True)
class Stored:
    """The fingerprints of the last imported file of one kind."""

    header: str
    prints: dict[bytes, int]  # national id -> fingerprint of that person's lines


@dataclass(frozen=True)
class Packed:
    """Stored fingerprints as they are kept: cheap to read and to hand to another process."""

    header: str
    ids: bytes  # the national ids, "\n"-separated
    values: bytes  # one unsigned 64-bit fingerprint per id

    def ids_set(self) -> set[bytes]:
        return set(self.ids.split(b"\n")) if self.values else set()

    def unpack(self) -> Stored:
        values = array("Q")
        values.frombytes(self.values)
        ids = self.ids.split(b"\n") if values else []
        return Stored(self.header, dict(zip(ids, values, strict=False)))


def load_packed(conn: Connection, kind: str) -> Packed | None:
    """The fingerprints stored by the last import of `kind`, if still valid."""
    cursor = binary_cursor(conn)
    try:
        cursor.execute(
            f"SELECT version, header, ids, prints FROM {referential_print.name} WHERE kind = {mark(conn)}", (kind,)
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None or row[0] != VERSION:
        return None
    return Packed(row[1], bytes(row[2]), bytes(row[3]))


def drop(conn: Connection, kind: str) -> None:
    """Forget the fingerprints of `kind`: its next import compares every line."""
    conn.execute(delete(referential_print).where(referential_print.c.kind == kind))


def pack(header: str, prints: dict[bytes, int]) -> Packed:
    return Packed(header, b"\n".join(prints), array("Q", prints.values()).tobytes())


def kept(lines: Lines, prints: dict[bytes, int]) -> Packed | None:
    """The fingerprints to store of a file read in full; None for a file not read as UTF-8:
    its bytes could not be trusted to decode alike the next time (`referential.selected`)."""
    return pack(lines.header_line, prints) if lines.encoding == "utf-8" else None


def save(conn: Connection, kind: str, packed: Packed) -> None:
    """Replace the fingerprints of `kind` (inside the import's transaction)."""
    drop(conn, kind)
    conn.execute(insert(referential_print).values(
        kind=kind, version=VERSION, header=packed.header, ids=packed.ids, prints=packed.values,
    ))
