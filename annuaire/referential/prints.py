"""Fingerprints of the lines of each person, kept from one referential import to the next.

A daily refresh changes about 1 % of the persons, yet every line of the three
files used to be split, digested and compared (7.35 M lines, ~35 s), and the
stored digests of every record loaded (~12 s). Each import now stores, per
file kind, one 64-bit fingerprint of the raw lines of each person (computed
at C speed while reading, see `reader.Groups`); the next import re-reads, diffs
and writes only the persons whose fingerprint changed, and leaves the records
of the others alone. The result is the one a full diff would give: a person
whose lines are byte-identical yields byte-identical records.

The fingerprints are a cache of the import, stored in the same transaction as
the records they describe. They are ignored (and the import diffs every line)
when the file's header or the line -> record mappings (`VERSION`) changed.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter, lshift, methodcaller, ne, not_, or_

from sqlalchemy import Connection, delete, insert, select

from annuaire.referential import records
from annuaire.store.digest import digest
from annuaire.store.schema import referential_print

# Bump DERIVATION when the records derived from unchanged lines would differ
# (a new search key rule, a new column…); changes of the mappings are seen alone.
DERIVATION = "1"
VERSION = f"{DERIVATION}-{digest(map(repr, records.MAPPINGS)) & 0xFFFFFFFF:08x}"


@dataclass(frozen=True)
class Stored:
    """The fingerprints of the last imported file of one kind."""

    header: str
    prints: dict[str, int]  # national id -> fingerprint of that person's lines


def load(conn: Connection, kind: str) -> Stored | None:
    """The fingerprints stored by the last import of `kind`, if still valid."""
    row = conn.execute(
        select(referential_print.c.version, referential_print.c.header, referential_print.c.ids,
               referential_print.c.prints).where(referential_print.c.kind == kind)
    ).first()
    if row is None or row.version != VERSION:
        return None
    values = array("Q")
    values.frombytes(row.prints)
    ids = bytes(row.ids).decode().split("\n") if values else []
    return Stored(row.header, dict(zip(ids, values)))


def drop(conn: Connection, kind: str) -> None:
    conn.execute(delete(referential_print).where(referential_print.c.kind == kind))


def save(conn: Connection, kind: str, header: str, prints: dict[str, int]) -> None:
    """Replace the fingerprints of `kind` (inside the import's transaction)."""
    drop(conn, kind)
    conn.execute(insert(referential_print).values(
        kind=kind, version=VERSION, header=header,
        ids="\n".join(prints).encode(), prints=array("Q", prints.values()).tobytes(),
    ))


@dataclass
class Groups:
    """The lines of one file grouped by person: a fingerprint for each person, and the
    selection of the persons whose lines must be read (changed, new, or in `also`).

    A person's lines are expected together (the national files are sorted); a person
    found again further on is read in full by a second pass (`deferred`)."""

    previous: dict[str, int] | None  # the last import's fingerprints; None: select everyone
    also: Collection[str] = frozenset()  # persons selected whatever their fingerprint
    column: int = 0  # index of the national id in a line (set from the header)
    prints: dict[str, int] = field(default_factory=dict)  # national id -> fingerprint, this file
    skipped: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (first line, lines) not selected
    deferred: set[str] = field(default_factory=set)
    selected_chars: int = 0  # size of the selected lines
    _carry: tuple[list[str], list[bytes], list[int]] = ([], [], [])

    def select(self, texts: list[str], raws: list[bytes], numbers: Sequence[int], *,
               last: bool = False) -> Iterator[tuple[int, str]]:
        """(line number, text) of the selected lines of one block, in order. The block's last
        person may go on in the next block: it is kept for then (all of it at `last`)."""
        kept_texts, kept_raws, kept_numbers = self._carry
        if kept_texts:
            texts, raws, numbers = kept_texts + texts, kept_raws + raws, kept_numbers + list(numbers)
        if not texts:
            return
        column = self.column
        ids = list(map(itemgetter(column), map(methodcaller("split", "|", column + 1), texts)))
        starts = [0, *compress(range(1, len(ids)), map(ne, ids[1:], ids[:-1]))]
        end = len(ids)
        if not last:
            end = starts.pop()
            self._carry = (texts[end:], raws[end:], list(numbers[end:]))
            if not starts:
                return
        else:
            self._carry = ([], [], [])
        ends = [*starts[1:], end]
        gids = list(map(ids.__getitem__, starts))
        chunks = list(map(b"\n".join, map(raws.__getitem__, map(slice, starts, ends))))
        prints = list(map(or_, map(lshift, map(zlib.crc32, chunks), repeat(32)), map(zlib.adler32, chunks)))
        if not self.prints.keys().isdisjoint(gids) or len(set(gids)) != len(gids):
            yield from self._select_apart(gids, prints, starts, ends, texts, numbers)
            return
        self.prints.update(zip(gids, prints))
        if self.previous is None:
            wanted: list = [True] * len(gids)
        else:
            wanted = list(map(ne, map(self.previous.get, gids), prints))
            if self.also:
                wanted = list(map(or_, wanted, map(self.also.__contains__, gids)))
            unwanted = list(map(not_, wanted))
            firsts = map(numbers.__getitem__, compress(starts, unwanted))
            self.skipped.update(zip(compress(gids, unwanted), zip(firsts, compress(map(int.__sub__, ends, starts), unwanted))))
        for start, stop in compress(zip(starts, ends), wanted):
            yield from self._lines(texts, numbers, start, stop)

    def _lines(self, texts: list[str], numbers: Sequence[int], start: int, stop: int) -> Iterator[tuple[int, str]]:
        self.selected_chars += sum(map(len, texts[start:stop]))
        yield from zip(numbers[start:stop], texts[start:stop])

    def _select_apart(self, gids: list[str], prints: list[int], starts: list[int], ends: list[int],
                      texts: list[str], numbers: Sequence[int]) -> Iterator[tuple[int, str]]:
        """`select` for a block where a person comes back (one at a time, in Python)."""
        previous = self.previous
        for gid, print_, start, stop in zip(gids, prints, starts, ends):
            seen = self.prints.get(gid)
            if seen is None:
                self.prints[gid] = print_
                if previous is None or previous.get(gid) != print_ or gid in self.also:
                    yield from self._lines(texts, numbers, start, stop)
                else:
                    self.skipped[gid] = (numbers[start], stop - start)
                continue
            self.prints[gid] = ((seen * 1_000_003) ^ print_) & 0xFFFFFFFFFFFFFFFF
            if gid in self.deferred:
                continue
            if gid in self.skipped:  # its first lines were not read: all of them, in a second pass
                del self.skipped[gid]
                self.deferred.add(gid)
                continue
            yield from self._lines(texts, numbers, start, stop)

    def select_deferred(self, texts: list[str], numbers: Sequence[int]) -> Iterator[tuple[int, str]]:
        """The second pass: every line of the deferred persons."""
        column = self.column
        ids = map(itemgetter(column), map(methodcaller("split", "|", column + 1), texts))
        for i in compress(range(len(texts)), map(self.deferred.__contains__, ids)):
            self.selected_chars += len(texts[i])
            yield numbers[i], texts[i]
