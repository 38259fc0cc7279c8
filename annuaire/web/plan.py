"""Choosing the path of a search: drive from a small set, or walk the name index.

A page of results is "the first 20 matches in name order". Two paths exist:
- walk: read people in name order (the family-name index, or the
  (profession, name) index when a profession is asked) and keep the rows
  that match every criterion; it costs about page × 20 / selectivity rows;
- drive: enumerate the smallest candidate set through its own index
  (the doctors, the people of a département, the holders of a domain's
  boxes…), keep the matches and sort them; it costs about the set's size.

Engines choose badly here without statistics (SQLite, before ANALYZE, sorts
all 330,000 doctors to show 20), so the choice is made from counts: cached for
codes (a profession, a département, a domain: they change with the daily
import only; places are estimated from their number of structures), capped
with LIMIT for free text (a name prefix, part of an address). The estimated
selectivity of several criteria is the product of theirs, as if independent.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, select

from annuaire.web.sql import Columns

CAP = 5000  # free-text sets are counted up to this
COUNT_TTL = 3600.0  # seconds a cached count is trusted (the data changes with the daily import)
COUNT_CACHE = 4096


@dataclass(frozen=True)
class Candidate:
    """A set of ids one criterion can enumerate from an index."""

    kind: str  # the criterion it stands for; its condition is implied when it drives
    ids: Select  # SELECT of the ids, with every condition of that criterion
    key: tuple | None = None  # cache key of its count; None: count capped at CAP
    walkable: bool = False  # an index yields it in name order (a family-name range, a profession)
    known: int | None = None  # size already counted by the caller (capped at CAP)
    estimate: Any = None  # a scalar SELECT estimating the size more cheaply than counting ids
    index_only: bool = False  # its ids come from an index alone (no row visited)
    drives: bool = True  # False: enumerating it means scanning a table (it only filters)


@dataclass(frozen=True)
class SearchPlan:
    path: str  # "walk" | "drive" | "empty"
    driver: Candidate | None = None
    ids: Select | None = None  # the driving ids (the driver's, intersected with another set)
    intersected: Candidate | None = None  # the set the driver's ids were kept in, if any

    @property
    def implied(self) -> tuple[str, ...]:
        """The criteria whose conditions the driving ids already apply (none when walking): the
        driver's, and the intersected set's (checking it again on each row found costs a probe
        of its index per row: 14 of 54 ms for a specialty in a big town)."""
        return tuple(c.kind for c in (self.driver, self.intersected) if c is not None)


INTERSECT_MAX = 100_000  # a second set up to this size is worth reading from its index
# ... and up to this many times the driver's: beyond, probing each driven row's own index costs less
# (measured at national scale: 4,178 people of a specialty in a town of 49,799 activities, 96 ms
# intersected against 75 ms probed; 1,335 in 22,104: 47 against 25; 91,322 in 49,799: 150 against 498)
INTERSECT_RATIO = 4


class CountCache:
    """Counts of code-like sets, cached per process for COUNT_TTL seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: OrderedDict[tuple, tuple[float, int]] = OrderedDict()

    def get(self, conn: Connection, key: tuple, query: Select, scalar: bool = False) -> int:
        """The number of rows of `query` (or its value when `scalar`), once per COUNT_TTL per store and key."""

        def count() -> int:
            counting = query if scalar else select(func.count()).select_from(query.subquery())
            return int(conn.execute(counting).scalar_one() or 0)

        return self.remember(conn, key, count)

    def remember(self, conn: Connection, key: tuple, count: Callable[[], int]) -> int:
        """`count()`, made once per COUNT_TTL per store and key (a statement built only when it runs)."""
        key = (conn.engine.url.render_as_string(), *key)
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and now - hit[0] < COUNT_TTL:
                self._values.move_to_end(key)
                return hit[1]
        value = count()
        with self._lock:
            self._values[key] = (now, value)
            while len(self._values) > COUNT_CACHE:
                self._values.popitem(last=False)
        return value


COUNTS = CountCache()


def size(conn: Connection, candidate: Candidate) -> int:
    """Distinct ids in the set: exact and cached for codes, capped at CAP for free text."""
    if candidate.known is not None:
        return candidate.known
    if candidate.key is not None and candidate.estimate is not None:
        return COUNTS.get(conn, candidate.key, candidate.estimate, scalar=True)
    if candidate.key is not None:
        return COUNTS.get(conn, candidate.key, candidate.ids)
    query = select(func.count()).select_from(candidate.ids.limit(CAP).subquery())
    return conn.execute(query).scalar_one()


def choose(
    conn: Connection,
    candidates: list[Candidate],
    total: int,
    page: int,
    page_size: int,
    *,
    walk: bool = True,
) -> SearchPlan:
    """The cheaper path for this page.

    `walk=False` when the matches cluster in name order (several readings of
    a name all sit around the same letters), where the walk would read the
    index up to them whatever the selectivity says.
    """
    if not candidates or (len(candidates) == 1 and candidates[0].walkable and walk):
        return SearchPlan("walk")  # nothing to weigh: read in name order
    sizes = [(size(conn, c), c) for c in candidates]
    if any(n == 0 and c.key is None for n, c in sizes):  # fresh counts only
        return SearchPlan("empty")  # (cached counts may lag behind an import)
    sizes = [(max(n, 1), c) for n, c in sizes]
    total = max(total, 1)
    ordered = [n for n, c in sizes if c.walkable]
    others = 1.0
    for n, c in sizes:
        if not c.walkable:
            others *= min(1.0, n / total)
    wanted = page * page_size / max(others, 1e-9)
    # Walking sets given in name order reads at most the smallest; the whole name index, everything.
    walk_rows = min(min(ordered) if ordered else total, wanted)
    drivers = sorted(((n, c) for n, c in sizes if c.drives), key=lambda item: item[0])
    if not drivers:
        return SearchPlan("walk")
    smallest, best = drivers[0]
    if not walk or smallest < walk_rows:
        other = intersected(best, drivers[1:], smallest)
        return SearchPlan("drive", best, intersect(conn, best, other), other)
    return SearchPlan("walk")


def intersected(best: Candidate, others: list[tuple[int, Candidate]], size: int) -> Candidate | None:
    """The next set that an index alone can list, to keep the driver's ids (`size` of them) in; None: none.

    Reading two sets from their indexes costs less than visiting one row per id
    of the first, while the second is not much larger than the first: a
    savoir-faire (10,000 people) within a city (40,000) leaves a few dozen rows
    to visit; a rare one (1,000) within the same city is cheaper probed.
    """
    if not best.index_only:
        return None
    for n, other in others:
        if other.index_only and n <= min(INTERSECT_MAX, INTERSECT_RATIO * size):
            return other
    return None


def intersect(conn: Connection, best: Candidate, other: Candidate | None) -> Select:
    """The driver's ids, kept only when also in the `other` set (when given)."""
    if other is None:
        return best.ids
    ids = best.ids.subquery()
    # a filter on the first set's rows, never a key to probe its index with
    return select(ids.c[0]).where(Columns(conn)(ids.c[0]).in_(other.ids))
