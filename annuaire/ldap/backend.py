"""Reading the store for LDAP: the public mailboxes, and following the journal.

LDAP never writes the store. It reads:

- the publicly visible mailboxes (`store.visibility.visible`: the one rule of
  every view) joined with their holder (person, savoir-faire) and structure, as
  records for `entries.make_entry`;
- the journal, through the one follower (`store.follow`), to reload only what
  changed: a mailbox by its address, a person (key id_nat) or a savoir-faire
  (key `id_nat|…`) by its holder's mailboxes, a structure (key tech_id) by its
  mailboxes. Boxes designated that are no longer visible are removed, so a box
  whose holder left disappears with the person's journal row.

The same queries run on SQLite and on PostgreSQL (read replicas welcome).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, select

from annuaire.gcpause import freeze_long_lived
from annuaire.ldap.index import DirectoryIndex
from annuaire.store import Store
from annuaire.store.follow import Cursor, Follower, snapshot, start
from annuaire.store.schema import mailbox, person, skill, structure
from annuaire.store.visibility import visible

log = logging.getLogger("annuaire.ldap")

CHUNK = 500
FULL_RELOAD_THRESHOLD = 20_000  # journal rows in one poll beyond which the index is rebuilt
SKILL_TYPE_PREFERENCE = {"S": 0, "CEX": 1, "PAC": 2, "DSM": 3, "CAPA": 4}


def _base_query(*, every: bool = False):
    """The columns of an entry; only visible boxes, or `every` box with a `visible` column."""
    mb, p, s = mailbox, person, structure
    shown = visible()
    query = select(
        mb.c.address, mb.c.type, mb.c.holder, mb.c.service, mb.c.description, mb.c.dematerialisation,
        mb.c.structure_idnat, p.c.id.label("person_id"), p.c.first_name, p.c.last_name,
        p.c.civilite_exercice_code, p.c.profession_code, p.c.profession_label,
        s.c.name.label("structure_name"), s.c.sign.label("structure_sign"), s.c.addressee, s.c.geo_complement,
        s.c.street_number, s.c.street_repetition, s.c.street_type_label, s.c.street_name,
        s.c.distribution_mention, s.c.cedex_office, s.c.postcode, s.c.commune_label, s.c.phone, s.c.dept_code,
        *([shown.label("visible")] if every else []),
    ).select_from(
        mb.outerjoin(p, p.c.id_nat == mb.c.holder)
        .outerjoin(s, and_(s.c.idnat == mb.c.structure_idnat, s.c.active.is_(True)))
    )
    return query if every else query.where(shown)


def _skills(conn: Connection, person_ids: Iterable[int] | None) -> dict[int, tuple[str, str]]:
    """The savoir-faire shown for each person: its ordinal speciality first."""
    best: dict[int, tuple[int, str, str]] = {}
    stmt = select(skill.c.person_id, skill.c.type_code, skill.c.code, skill.c.label).where(skill.c.active.is_(True))

    def take(rows: Iterable[Any]) -> None:
        for r in rows:
            rank = SKILL_TYPE_PREFERENCE.get(r.type_code or "", 9)
            current = best.get(r.person_id)
            if current is None or rank < current[0]:
                best[r.person_id] = (rank, r.code or "", r.label or "")

    if person_ids is None:
        take(conn.execute(stmt.order_by(skill.c.id)))
    else:
        ids = sorted(set(person_ids))
        for i in range(0, len(ids), CHUNK):
            take(conn.execute(stmt.where(skill.c.person_id.in_(ids[i:i + CHUNK])).order_by(skill.c.id)))
    return {k: (v[1], v[2]) for k, v in best.items()}


def _records(rows: Iterable[Any], skills: dict[int, tuple[str, str]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        rec = dict(row._mapping)
        sk = skills.get(rec["person_id"]) if rec["person_id"] is not None else None
        if sk:
            rec["skill_code"], rec["skill_label"] = sk
        yield rec


@contextmanager
def published_records(store: Store) -> Iterator[tuple[Iterator[dict[str, Any]], Cursor]]:
    """(records streamed from one snapshot, the journal cursor they are consistent with)."""
    with snapshot(store.engine) as conn:
        cursor = start(conn)
        skills = _skills(conn, None)
        rows = conn.execution_options(stream_results=True, yield_per=5000).execute(
            _base_query().order_by(mailbox.c.address))
        yield _records(rows, skills), cursor


def load_index(store: Store, suffix: str) -> tuple[DirectoryIndex, Cursor]:
    """Index the published mailboxes, streaming them (the records never all sit in memory)."""
    started = time.monotonic()
    with published_records(store) as (records, cursor):
        index = DirectoryIndex.build(records, suffix)
    log.info("LDAP index: %d published mailboxes (read and indexed in %.1f s)", index.live,
             time.monotonic() - started)
    return index, cursor


@dataclass
class Changes:
    """What one poll of the journal found."""

    cursor: Cursor
    upserts: list[dict[str, Any]] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    full: DirectoryIndex | None = None
    rows: int = 0


def poll(store: Store, cursor: Cursor, suffix: str, *, force_full: bool = False,
         threshold: int = FULL_RELOAD_THRESHOLD, on_reload: Callable[[], None] | None = None) -> Changes:
    """Read the journal after `cursor` and the records it designates (runs in a thread).

    Works on a copy of the cursor: the caller adopts `Changes.cursor` once it applied them.
    A backlog of more than `threshold` rows rebuilds the index (`on_reload` is told first:
    the index being served is then known to be behind for as long as the rebuild takes).
    """
    follower = Follower(Cursor.from_json(cursor.to_json()))
    batch = follower.poll(store.engine, limit=threshold + 1)
    if force_full or batch.truncated:
        if batch.truncated and on_reload is not None:
            on_reload()
        index, fresh = load_index(store, suffix)
        return Changes(fresh, full=index, rows=len(batch.rows))
    rows = batch.rows
    if not rows:
        return Changes(follower.cursor)
    addresses: set[str] = set()
    holders: set[str] = set()
    structures: set[str] = set()
    for r in rows:
        if r.entity == "mailbox":
            addresses.add(r.key.lower())
        elif r.entity == "person":
            holders.add(r.key)
        elif r.entity in ("skill", "diploma"):
            holders.add(r.key.split("|", 1)[0])
        elif r.entity == "structure":
            structures.add(r.key)
    changes = Changes(follower.cursor, rows=len(rows))
    found: dict[str, dict[str, Any]] = {}
    designated: set[str] = set(addresses)
    with store.read() as conn:
        idnats: set[str] = set()
        tech = sorted(structures)
        for i in range(0, len(tech), CHUNK):
            idnats.update(x for (x,) in conn.execute(
                select(structure.c.idnat).where(structure.c.tech_id.in_(tech[i:i + CHUNK]))) if x)
        queries = [(mailbox.c.address, sorted(addresses)), (mailbox.c.holder, sorted(holders)),
                   (mailbox.c.structure_idnat, sorted(idnats))]
        raw: list[Any] = []
        for column, values in queries:
            for i in range(0, len(values), CHUNK):
                raw.extend(conn.execute(_base_query(every=True).where(column.in_(values[i:i + CHUNK]))).all())
        shown = [r for r in raw if r.visible]
        designated.update(r.address.lower() for r in raw)
        skills = _skills(conn, [r.person_id for r in shown if r.person_id is not None])
        for rec in _records(shown, skills):
            del rec["visible"]
            found.setdefault(rec["address"].lower(), rec)
    changes.upserts = list(found.values())
    changes.removed = designated - set(found)
    return changes


class Refresher:
    """Follows the journal every `interval` seconds and applies the changes to a Directory.

    It keeps the directory's freshness up to date (`Directory.position`, the journal
    position its index reflects, and `Directory.behind_since`, set while a large
    backlog is being rebuilt) and reports the position through `report` (the
    workers' shared counters).
    """

    def __init__(self, store: Store, directory: Any, cursor: Cursor, *, interval: float = 0.5,
                 on_accounts: Callable[[], None] | None = None,
                 report: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.directory = directory
        self.cursor = cursor
        self.interval = interval
        self.on_accounts = on_accounts
        self.report = report
        self.applied = 0
        self._published(cursor)

    def _published(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.directory.position = cursor.position
        if self.report is not None:
            self.report(cursor.position)

    def _reloading(self) -> None:
        self.directory.behind_since = time.monotonic()

    def apply(self, changes: Changes) -> None:
        directory = self.directory
        if changes.full is not None:
            directory.index = changes.full
            freeze_long_lived()
        else:
            index = directory.index
            for address in changes.removed:
                index.remove(address)
            for rec in changes.upserts:
                index.upsert(rec, directory.suffix)
        self.applied += changes.rows
        self._published(changes.cursor)
        directory.behind_since = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.step(loop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("LDAP refresh failed; serving the current index")

    async def step(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        force = self.directory.index.needs_compaction()
        changes = await loop.run_in_executor(None, lambda: poll(
            self.store, self.cursor, self.directory.suffix, force_full=force, on_reload=self._reloading))
        self.apply(changes)
        if self.on_accounts is not None:
            await loop.run_in_executor(None, self.on_accounts)
