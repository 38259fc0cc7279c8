"""THE journal follower: every committed journal row, never skipped, for every view that follows changes.

Why not `id > last`: on PostgreSQL the journal's ids come from a sequence when a
row is inserted, and its transaction commits later. A reader may see id 12
while id 11 (a longer transaction: a national refresh overlapping a
publication) is still running; moving past 12 would skip 11 for ever. (SQLite
has one writer at a time: ids become visible in order there, and no hole is
ever kept.)

A `Cursor` is the highest id seen (`position`) and the ids below it not seen
yet (`holes`, as ranges). Each poll re-reads the holes, then what lies beyond
the position. A hole is forgotten once every transaction that could still fill
it has ended: PostgreSQL's snapshot `xmin` has passed the `xmax` recorded for
the hole (one poll after the hole was noticed, because a sequence number is
drawn a moment before its transaction gets its id); a still-missing id was then
rolled back (sequences never give numbers back). Until then it costs one
indexed range read per poll.

A poll reads in one snapshot (REPEATABLE READ on PostgreSQL, a read
transaction on SQLite), so the rows it returns, its new position and its holes
agree. Views re-read the records a row designates after the poll: a row may
be delivered twice (a merged hole), never zero times, and every view applies
it idempotently.

Users: the LDAP index (`ldap.backend`), the FHIR cache (`fhir.cache`, its
cursor saved in `fhir_sync`), the extractions' "changes since"
(`Cursor.token()` in the manifest, read back by the publication API's domain
history).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from annuaire.errors import InvalidInput
from annuaire.store.dialect import consistent_reads
from annuaire.store.schema import journal

MAX_HOLES = 1_000  # ranges kept; beyond, the closest ones are merged (some rows then come twice)
RECENT = 10_000  # ids below the head checked for holes when no writer is running
RANGES_PER_QUERY = 100

DEFAULT_COLUMNS = (journal.c.id, journal.c.entity, journal.c.key)


@dataclass
class Hole:
    """Journal ids first..last (inclusive) not visible yet."""

    first: int
    last: int
    xmax: int | None = None  # PostgreSQL: next transaction id at the poll after the hole was seen

    def as_list(self) -> list:
        return [self.first, self.last, self.xmax]


@dataclass
class Cursor:
    position: int = 0
    holes: list[Hole] = field(default_factory=list)

    def to_json(self) -> str:
        return orjson.dumps({"position": self.position, "holes": [h.as_list() for h in self.holes]}).decode()

    @classmethod
    def from_json(cls, text: str | None, position: int = 0) -> Cursor:
        """A saved cursor. Also reads the FHIR renderer's former format (a list of [id, time] holes)."""
        data = orjson.loads(text) if text else {}
        if isinstance(data, list):
            return cls(position, [Hole(int(h[0]), int(h[0])) for h in data])
        return cls(int(data.get("position", position)),
                   [Hole(int(a), int(b), None if x is None else int(x)) for a, b, x in data.get("holes", [])])

    def token(self) -> str:
        """An opaque, URL-safe form (extraction manifests, API `cursor` parameters)."""
        return base64.urlsafe_b64encode(self.to_json().encode()).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str, name: str = "cursor") -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if not isinstance(orjson.loads(raw), dict):
                raise ValueError("not an object")
            cursor = cls.from_json(raw.decode())
        except Exception as exc:
            raise InvalidInput(f"{name}: not a journal cursor given by this directory ({exc.__class__.__name__})") from exc
        if cursor.position < 0 or cursor.position >= 2**62 or any(
                not 0 < h.first <= h.last <= cursor.position for h in cursor.holes) or len(cursor.holes) > MAX_HOLES:
            raise InvalidInput(f"{name}: not a journal cursor given by this directory (out of range)")
        return cursor

    def pending(self) -> int:
        """Ids below the position not seen yet (an upper bound of the rows a poll may still bring)."""
        return sum(h.last - h.first + 1 for h in self.holes)


@dataclass
class Batch:
    """What one poll brought."""

    rows: list[Any]
    truncated: bool = False  # more rows lie beyond: poll again (or rebuild, for a large backlog)


# --- reading in one snapshot -----------------------------------------------------------


@contextmanager
def snapshot(engine: Any) -> Iterator[Connection]:
    """A read-only transaction in which every statement sees the same state."""
    with engine.connect() as conn:
        conn = consistent_reads(conn)
        with conn.begin():
            yield conn


def _pg_snapshot(conn: Connection) -> tuple[int, int, bool]:
    """(xmin, xmax, some writer running) of this transaction's snapshot."""
    row = conn.exec_driver_sql(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text,"
        " EXISTS (SELECT 1 FROM pg_snapshot_xip(s)) FROM pg_current_snapshot() AS s").one()
    return int(row[0]), int(row[1]), bool(row[2])


def _head(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(journal.c.id), 0))).scalar_one())


def _gaps(conn: Connection, lo: int, hi: int) -> list[Hole]:
    """Ranges of ids in (lo, hi] with no visible journal row (PostgreSQL)."""
    if hi <= lo:
        return []
    rows = conn.exec_driver_sql(
        "SELECT a, b FROM ("
        " SELECT id + 1 AS a, lead(id, 1, %(hi)s + 1) OVER (ORDER BY id) - 1 AS b"
        "  FROM journal WHERE id > %(lo)s AND id <= %(hi)s"
        " UNION ALL SELECT %(lo)s + 1,"
        "  (SELECT coalesce(min(id), %(hi)s + 1) - 1 FROM journal WHERE id > %(lo)s AND id <= %(hi)s)"
        ") g WHERE b >= a ORDER BY a", {"lo": lo, "hi": hi}).all()
    return [Hole(int(a), int(b)) for a, b in rows]


def _gaps_of(ids: Sequence[int], lo: int, hi: int) -> list[Hole]:
    """Ranges of (lo, hi] missing from the sorted `ids`."""
    out = []
    expected = lo + 1
    for i in ids:
        if i > expected:
            out.append(Hole(expected, i - 1))
        expected = i + 1
    if expected <= hi:
        out.append(Hole(expected, hi))
    return out


def _in(holes: list[Hole]) -> list[ColumnElement[bool]]:
    """Conditions selecting the ids of these holes, a bounded number of ranges each."""
    out = []
    for i in range(0, len(holes), RANGES_PER_QUERY):
        out.append(or_(*(journal.c.id.between(h.first, h.last) for h in holes[i:i + RANGES_PER_QUERY])))
    return out


def _minus(holes: list[Hole], seen: Sequence[int]) -> list[Hole]:
    """The holes without the ids seen (sorted)."""
    if not seen:
        return holes
    out = []
    for h in holes:
        inside = [i for i in seen if h.first <= i <= h.last]
        if not inside:
            out.append(h)
            continue
        for g in _gaps_of(inside, h.first - 1, h.last):
            out.append(Hole(g.first, g.last, h.xmax))
    return out


def _bounded(holes: list[Hole]) -> list[Hole]:
    """At most MAX_HOLES ranges: merge across the smallest gaps between neighbours."""
    if len(holes) <= MAX_HOLES:
        return holes
    holes = sorted(holes, key=lambda h: h.first)
    gaps = sorted(range(len(holes) - 1), key=lambda i: holes[i + 1].first - holes[i].last)
    joined = set(gaps[:len(holes) - MAX_HOLES])
    out = [holes[0]]
    for i in range(1, len(holes)):
        h = holes[i]
        if i - 1 in joined:
            last = out[-1]
            xmax = None if last.xmax is None or h.xmax is None else max(last.xmax, h.xmax)
            out[-1] = Hole(last.first, h.last, xmax)
        else:
            out.append(h)
    return out


# --- the follower -----------------------------------------------------------------------


def start(conn: Connection) -> Cursor:
    """A cursor consistent with what `conn`'s snapshot shows (a full copy read in the same
    transaction, or just after: rows it includes may then come once more)."""
    head = _head(conn)
    if conn.dialect.name != "postgresql":
        return Cursor(head)
    _, _, writing = _pg_snapshot(conn)
    # With a writer running, any id may still come; otherwise only one drawn a moment ago.
    lo = 0 if writing else max(0, head - RECENT)
    return Cursor(head, _gaps(conn, lo, head))


class Follower:
    """Reads the journal rows committed since the last poll, holes included.

    `where` narrows the rows returned (a domain's history) without narrowing
    what the cursor tracks.
    """

    def __init__(self, cursor: Cursor | None = None) -> None:
        self.cursor = cursor or Cursor()

    def poll(self, engine: Any, *, columns: Sequence[Any] = DEFAULT_COLUMNS, where: Any = None,
             limit: int | None = None) -> Batch:
        with snapshot(engine) as conn:
            return self.poll_in(conn, columns=columns, where=where, limit=limit)

    def poll_in(self, conn: Connection, *, columns: Sequence[Any] = DEFAULT_COLUMNS, where: Any = None,
                limit: int | None = None) -> Batch:
        """`poll` inside a snapshot transaction the caller opened (see `snapshot`)."""
        cursor = self.cursor
        postgres = conn.dialect.name == "postgresql"
        holes = cursor.holes
        closing: set[int] = set()
        if holes and postgres:
            xmin, xmax, _ = _pg_snapshot(conn)
            for i, h in enumerate(holes):
                if h.xmax is None:
                    h.xmax = xmax
                elif xmin >= h.xmax:
                    closing.add(i)  # read one last time below, then forgotten
        head = _head(conn)
        id_col = journal.c.id
        selected = [*columns] if any(c is id_col for c in columns) else [id_col, *columns]
        rows: list[Any] = []
        for condition in _in(holes):
            query = select(*selected).where(and_(condition, where) if where is not None else condition)
            rows.extend(conn.execute(query.order_by(id_col)).all())
        beyond = (id_col > cursor.position) & (id_col <= head)
        query = select(*selected).where(and_(beyond, where) if where is not None else beyond).order_by(id_col)
        new = conn.execute(query.limit(limit) if limit else query).all()
        truncated = bool(limit) and len(new) >= (limit or 0)
        position = new[-1].id if truncated else head
        if postgres:
            if where is None and not truncated:
                fresh = _gaps_of([r.id for r in new], cursor.position, position)
            else:
                fresh = _gaps(conn, cursor.position, position)
            seen_in_holes = sorted(r.id for r in rows)
            kept = [h for i, h in enumerate(holes) if i not in closing]
            if where is not None:  # rows of other scopes filled holes too: ask the table
                kept = [g for h in kept for g in _refill(conn, h)]
            else:
                kept = _minus(kept, seen_in_holes)
            cursor.holes = _bounded(kept + fresh)
        cursor.position = max(cursor.position, position)
        return Batch(rows + list(new), truncated)

    def behind(self, engine: Any) -> bool:
        """True when committed rows wait to be read (beyond the position or in a hole)."""
        with snapshot(engine) as conn:
            return behind(conn, self.cursor)


def _refill(conn: Connection, hole: Hole) -> list[Hole]:
    """What is still missing of a hole, by the table itself."""
    return [Hole(g.first, g.last, hole.xmax) for g in _gaps(conn, hole.first - 1, hole.last)]


def behind(conn: Connection, cursor: Cursor) -> bool:
    """Whether `cursor` has committed rows left to read, as `conn` sees the journal."""
    conditions = [journal.c.id > cursor.position, *_in(cursor.holes)]
    return any(conn.execute(select(journal.c.id).where(c).limit(1)).first() is not None for c in conditions)
