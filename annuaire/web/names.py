"""Names typed in the box: which readings are possible, and which index serves each.

"dupont" is a family-name prefix. Several words may be a compound family name
("le goff"), "prénom nom" or "nom prénom", split anywhere: each reading is a
branch `family starts with A and first name starts with B`. Short words make
some branches huge ("le" + "k": every Lefèvre and every Kevin) and others
empty, so every range is counted on its index (exactly and cached for keys of
up to 5 characters, capped at CAP otherwise): empty readings are dropped, each
remaining one is enumerated from its narrower range only, and when several
readings remain those costing more than BUDGET rows are dropped too: they
would be slow and flood the page with people nobody meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    false,
    func,
    or_,
    select,
    union_all,
)

from annuaire.store.prefix import starts_with
from annuaire.store.schema import person
from annuaire.store.select import prepared
from annuaire.web import plan
from annuaire.web.memo import per_answer
from annuaire.web.sql import placeholder

CAP = 5000
BUDGET = 10000
EXACT_UP_TO = 5  # prefixes this short are counted further (up to EXACT_CAP) and cached
EXACT_CAP = 100_000


@dataclass(frozen=True)
class Range:
    column: str  # "last_name_key" | "first_name_key"
    key: str
    size: int  # capped at CAP


@dataclass(frozen=True)
class Reading:
    """One way to read the words: every range must match; `ranges[0]` is the narrowest."""

    ranges: tuple[Range, ...]

    @property
    def size(self) -> int:
        return self.ranges[0].size


def readings(conn: Connection, words: Sequence[str]) -> list[Reading]:
    """The possible readings of the words, empty ones dropped, narrowest range first.

    One word has one reading, a family-name range, left uncounted (its page
    is read in order from the index; counting it would cost more).
    """
    if len(words) == 1:
        return [Reading((Range("last_name_key", words[0], CAP),))]
    splits: list[list[tuple[str, str]]] = [[("last_name_key", " ".join(words))]]
    for k in range(1, len(words)):
        a, b = " ".join(words[:k]), " ".join(words[k:])
        splits.append([("last_name_key", a), ("first_name_key", b)])
        splits.append([("last_name_key", b), ("first_name_key", a)])
    sizes: dict[tuple[str, str], int] = {}
    out: list[Reading] = []
    for split in splits:
        ranges = []
        for column, key in split:
            if (column, key) not in sizes:
                sizes[(column, key)] = 0 if _emptied(sizes, column, key) else _count(conn, column, key)
            ranges.append(Range(column, key, sizes[(column, key)]))
            if not ranges[-1].size:
                break  # (an empty range empties the reading: its other range is not counted)
        else:
            out.append(Reading(tuple(sorted(ranges, key=lambda r: r.size))))
    if len(out) > 1:
        affordable = [r for r in out if r.size <= BUDGET]
        whole = [r for r in out if len(r.ranges) == 1]
        out = affordable or whole or [min(out, key=lambda r: r.size)]
    return out


def _emptied(sizes: dict[tuple[str, str], int], column: str, key: str) -> bool:
    """A range surely empty: nothing begins with its first words ("cabinet infirmier" when no
    family name begins with "cabinet")."""
    words = key.split()
    return any(sizes.get((column, " ".join(words[:n]))) == 0 for n in range(1, len(words)))


@per_answer
def _count(conn: Connection, column: str, key: str) -> int:
    col = person.c[column]
    if len(key) <= EXACT_UP_TO:
        query = select(col).where(starts_with(col, key)).limit(EXACT_CAP)
        return plan.COUNTS.get(conn, ("name-range", column, key), query)

    def build() -> Select:
        inner = select(col).where(starts_with(col, placeholder("key"))).limit(CAP).subquery()
        return select(func.count()).select_from(inner)

    return int(prepared(conn, f"name range size {column}", build, {"key": key})[0][0])


def condition(found: Sequence[Reading], ix: Any, walked: bool = False) -> ColumnElement[bool]:
    """Any reading matches. `ix` steers index use; when `walked`, the walked range stays bare."""
    if not found:
        return false()
    branches = []
    for reading in found:
        terms = []
        for i, r in enumerate(reading.ranges):
            bare = walked and i == 0
            terms.append(starts_with(person.c[r.column] if bare else ix(person.c[r.column]), r.key))
        branches.append(and_(*terms))
    return or_(*branches)


def ids(found: Sequence[Reading], ix: Any) -> Select:
    """The ids of the people of every reading, each enumerated from its narrowest range."""
    selects = []
    for reading in found:
        first, *rest = reading.ranges
        conds = [starts_with(person.c[first.column], first.key)]
        conds += [starts_with(ix(person.c[r.column]), r.key) for r in rest]
        selects.append(select(person.c.id).where(*conds))
    if not selects:
        return select(person.c.id).where(false())
    if len(selects) == 1:
        return selects[0]
    return select(union_all(*selects).subquery().c.id)


def estimate(found: Sequence[Reading]) -> int:
    return sum(r.size for r in found)


def walkable(found: Sequence[Reading]) -> bool:
    """One family-name range: walking it yields people in name order."""
    return len(found) == 1 and found[0].ranges[0].column == "last_name_key"
