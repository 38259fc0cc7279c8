"""The raw lines of a national file grouped by person, each group fingerprinted.

Used by `selected.py` to select the persons whose lines changed since the stored
fingerprints (`prints`). Kept apart from the store (no database layer): it
works on raw bytes only, and is tested alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import is_not, itemgetter, methodcaller, ne, not_, or_

from annuaire.store.digest import group_prints


@dataclass
class Groups:
    """The raw lines of one file grouped by person: a fingerprint for each person, and the
    selection of the persons whose lines must be read (changed, new, or in `also`).

    A person's lines are expected together (the national files are grouped so); a person
    found again further on is read in full by a second pass (`deferred`). Everything
    per line or per person is mapped in C over a block: 4.4 M persons in the three files.
    National ids are bytes here, as in the file."""

    previous: dict[bytes, int] | None  # the last import's fingerprints; None: select everyone
    also: Collection[bytes] = frozenset()  # persons selected whatever their fingerprint
    column: int = 0  # index of the national id in a line (set from the header)
    prints: dict[bytes, int] = field(default_factory=dict)  # national id -> fingerprint, this file
    # The persons not selected: national id, first line number and number of lines.
    skipped_ids: list[bytes] = field(default_factory=list)
    skipped_firsts: list[int] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)
    deferred: set[bytes] = field(default_factory=set)
    selected_bytes: int = 0  # size of the selected lines
    _read: set[bytes] | None = None  # persons whose lines were selected, once one comes back
    _carry: tuple[list[bytes], list[int]] = ([], [])

    def select(self, raws: list[bytes], numbers: Sequence[int], *, last: bool = False) -> Iterator[tuple[int, bytes]]:
        """(line number, raw line) of the selected lines of one block, in order. The block's
        last person may go on in the next block: it is kept for then (all of it at `last`)."""
        kept_raws, kept_numbers = self._carry
        if kept_raws:
            raws, numbers = kept_raws + raws, kept_numbers + list(numbers)
        if not raws:
            return
        column = self.column
        try:  # (each split list is freed at once: holding them costs 5× more)
            ids = list(map(itemgetter(column), map(methodcaller("split", b"|", column + 1), raws)))
        except IndexError:
            i = next(i for i, raw in enumerate(raws) if raw.count(b"|") < column)
            raise ShortLine(numbers[i], raws[i]) from None
        starts = [0, *compress(range(1, len(ids)), map(ne, ids[1:], ids[:-1]))]
        end = len(ids)
        if not last:
            end = starts.pop()
            self._carry = (raws[end:], list(numbers[end:]))
            if not starts:
                return
        else:
            self._carry = ([], [])
        ends = [*starts[1:], end]
        gids = list(map(ids.__getitem__, starts))
        prints = group_prints(list(map(b"\n".join, map(raws.__getitem__, map(slice, starts, ends)))))
        # One dict operation a person: a person already seen (here or in an earlier block)
        # gets its earlier fingerprint back instead of this one.
        got = list(map(self.prints.setdefault, gids, prints))
        if any(map(is_not, got, prints)):
            for gid, value, print_ in zip(gids, got, prints, strict=False):
                if value is print_ and self.prints.get(gid) is print_:
                    del self.prints[gid]  # back to the state before this block
            yield from self._select_apart(gids, prints, starts, ends, raws, numbers)
            return
        if self.previous is None:  # everyone: the block's lines in one go, not person by person
            yield from self._lines(raws, numbers, 0, end)
            return
        wanted = list(map(ne, map(self.previous.get, gids), prints))
        if self.also:
            wanted = list(map(or_, wanted, map(self.also.__contains__, gids)))
        unwanted = list(map(not_, wanted))
        self.skipped_ids.extend(compress(gids, unwanted))
        self.skipped_firsts.extend(map(numbers.__getitem__, compress(starts, unwanted)))
        self.skipped_lines.extend(compress(map(int.__sub__, ends, starts), unwanted))
        for start, stop in compress(zip(starts, ends, strict=False), wanted):
            yield from self._lines(raws, numbers, start, stop)

    def _lines(self, raws: list[bytes], numbers: Sequence[int], start: int, stop: int) -> Iterator[tuple[int, bytes]]:
        self.selected_bytes += sum(map(len, raws[start:stop]))
        yield from zip(numbers[start:stop], raws[start:stop], strict=False)

    def skipped(self) -> tuple[list[bytes], list[int], list[int]]:
        """(national ids, first line numbers, numbers of lines) of the persons whose lines
        were not read (the deferred ones were, in the second pass)."""
        if not self.deferred:
            return self.skipped_ids, self.skipped_firsts, self.skipped_lines
        kept = list(map(not_, map(self.deferred.__contains__, self.skipped_ids)))
        return (list(compress(self.skipped_ids, kept)), list(compress(self.skipped_firsts, kept)),
                list(compress(self.skipped_lines, kept)))

    def _select_apart(self, gids: list[bytes], prints: list[int], starts: list[int], ends: list[int],
                      raws: list[bytes], numbers: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """`select` for a block where a person comes back (one at a time, in Python)."""
        previous = self.previous
        if self._read is None:  # the persons read so far, known from the first return of one
            self._read = set(self.prints) - set(self.skipped_ids)
        for gid, print_, start, stop in zip(gids, prints, starts, ends, strict=False):
            seen = self.prints.get(gid)
            if seen is None:
                self.prints[gid] = print_
                if previous is None or previous.get(gid) != print_ or gid in self.also:
                    self._read.add(gid)
                    yield from self._lines(raws, numbers, start, stop)
                else:
                    self.skipped_ids.append(gid)
                    self.skipped_firsts.append(numbers[start])
                    self.skipped_lines.append(stop - start)
                continue
            self.prints[gid] = ((seen * 1_000_003) ^ print_) & 0xFFFFFFFFFFFFFFFF
            if gid in self._read:
                yield from self._lines(raws, numbers, start, stop)
            else:  # its first lines were not read: all of them, in a second pass
                self.deferred.add(gid)

    def select_deferred(self, raws: list[bytes], numbers: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """The second pass: every line of the deferred persons."""
        column = self.column
        ids = map(itemgetter(column), map(methodcaller("split", b"|", column + 1), raws))
        for i in compress(range(len(raws)), map(self.deferred.__contains__, ids)):
            self.selected_bytes += len(raws[i])
            yield numbers[i], raws[i]


class ShortLine(Exception):
    """A line without the national id's column (the reader names the error)."""

    def __init__(self, line_no: int, raw: bytes) -> None:
        super().__init__(line_no)
        self.line_no = line_no
        self.raw = raw
