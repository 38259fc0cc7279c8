"""The versions of FHIR resources: kept when replaced, read back for vread and `_history`.

A resource's current version is its `fhir_resource` row; when the renderer replaces it
(`cache._write`), the row it replaces is copied as it was stored (compressed) into
`fhir_history`, with the time it was superseded. That is all a mirror needs (IHE mCSD
ITI-91: `GET Practitioner/_history?_since=…`): the versions recorded since an instant are
the current ones recorded since then and the past ones recorded since then, which were
superseded since then too. Versions superseded more than `days` ago are pruned (`prune`, by
the server and `annuaire fhir prune-history`); a `_since` before that limit could miss some,
so it is refused (`oldest_since`).

`_since` is on the time a version was written into the cache (`recorded_at`), not on the
time of the change it renders (`meta.lastUpdated`): a change made by a long import is
dated when the import started and rendered minutes later, after a mirror may have polled
past that date. A page of type history stops `SETTLE` seconds before now, for the render
transactions that were in flight then to have committed.

The cache's first rendering writes version 1 of everything and keeps no history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, Table, delete, literal, select, tuple_, union_all

from annuaire.fhir import packing
from annuaire.fhir.tables import fhir_history, fhir_resource
from annuaire.store.clock import FORMAT

DEFAULT_DAYS = 90
SETTLE = 5.0  # seconds: a render's write transaction commits within this of the time it records


@dataclass(frozen=True)
class Version:
    kind: str
    rid: int
    version: int
    active: bool
    last_updated: str  # stored form: the time of the change (meta.lastUpdated)
    recorded_at: str  # stored form: when the version was written
    body: bytes  # the JSON as served then


def keep(conn: Connection, kind: str, rids: list[int], now: str) -> None:
    """Copy the current rows of these resources into the history: new versions replace them `now`."""
    f = fhir_resource
    rows = conn.execute(
        select(f.c.rid, f.c.version, f.c.active, f.c.last_updated, f.c.recorded_at, f.c.json)
        .where((f.c.kind == kind) & f.c.rid.in_(rids))
    ).all()
    if rows:
        conn.execute(fhir_history.insert(), [
            {"kind": kind, "rid": r.rid, "version": r.version, "active": bool(r.active),
             "last_updated": r.last_updated, "recorded_at": r.recorded_at, "superseded_at": now, "json": r.json}
            for r in rows
        ])


def _ago(seconds: float, now: datetime | None = None) -> str:
    return ((now or datetime.now(UTC)) - timedelta(seconds=seconds)).strftime(FORMAT)


def oldest_since(days: int, now: datetime | None = None) -> str:
    """The earliest `_since` whose answer is complete: versions superseded before it are pruned."""
    return _ago(days * 86400, now)


def settled() -> str:
    """The upper bound of a first page of type history: every version recorded up to it is committed."""
    return _ago(SETTLE)


def prune(conn: Connection, days: int = DEFAULT_DAYS) -> int:
    """Delete the versions superseded more than `days` ago. Returns how many."""
    return conn.execute(delete(fhir_history).where(fhir_history.c.superseded_at < oldest_since(days))).rowcount or 0


def _version(conn: Connection, row: Any) -> Version:
    return Version(row.kind, row.rid, row.version, bool(row.active), row.last_updated, row.recorded_at,
                   packing.unpack(conn, row.json))


def _selects(kind: str, *conditions: Callable[[Table], Any]) -> tuple[Select, Select]:
    """The same columns from the current versions and the kept ones."""
    out = []
    for t in (fhir_resource, fhir_history):
        cond = t.c.kind == kind
        for c in conditions:
            cond = cond & c(t)
        out.append(select(t.c.kind, t.c.rid, t.c.version, t.c.active, t.c.last_updated, t.c.recorded_at, t.c.json)
                   .where(cond))
    return out[0], out[1]


def vread(conn: Connection, kind: str, rid: int, version: int) -> Version | None:
    current, past = _selects(kind, lambda t: t.c.rid == rid, lambda t: t.c.version == version)
    row = conn.execute(current).first() or conn.execute(past).first()
    return None if row is None else _version(conn, row)


def of_instance(conn: Connection, kind: str, rid: int, since: str | None, count: int) -> tuple[list[Version], int]:
    """The kept versions of one resource recorded since `since`, newest first (at most
    `count`), and how many there are."""
    conditions: list[Callable[[Table], Any]] = [lambda t: t.c.rid == rid]
    if since:
        conditions.append(lambda t: t.c.recorded_at >= since)
    both = union_all(*_selects(kind, *conditions)).subquery()
    rows = conn.execute(select(both).order_by(both.c.version.desc())).all()
    return [_version(conn, r) for r in rows[:count]], len(rows)


def changes(conn: Connection, kind: str, since: str | None, until: str,
            after: tuple[str, int, int] | None, count: int) -> tuple[list[Version], bool]:
    """Versions of one type recorded in [since, until], newest first (then by id and version,
    descending), from just after `after` (recorded_at, rid, version) of the previous page.
    Returns at most `count` and whether more follow."""
    conditions: list[Callable[[Table], Any]] = [lambda t: t.c.recorded_at <= until]
    if since:
        conditions.append(lambda t: t.c.recorded_at >= since)
    if after is not None:
        conditions.append(lambda t: tuple_(t.c.recorded_at, t.c.rid, t.c.version) < tuple_(*map(literal, after)))
    rows: list[Any] = []
    for part in _selects(kind, *conditions):
        t = part.selected_columns
        rows += conn.execute(part.order_by(t.recorded_at.desc(), t.rid.desc(), t.version.desc()).limit(count + 1)).all()
    rows.sort(key=lambda r: (r.recorded_at, r.rid, r.version), reverse=True)
    return [_version(conn, r) for r in rows[:count]], len(rows) > count
