"""The renderer: keeps `fhir_resource` (and its telecom/token indexes) in step
with the store by following the append-only journal.

Why a follower and not rendering inside each writer: the writers (referential
import, mailbox publication) know nothing about FHIR, and the journal already
says which records changed. The follower maps each journal row to the
resources it touches (a mailbox change touches its old and new carriers, an
activity its role, its practitioner and its site, a person its practitioner
and roles), re-renders them and writes only those whose content really
changed: then `version` goes +1 and `last_updated` becomes the time of the
change in the store (the latest `last_updated` of the records it is made of,
tombstones of its mailboxes included), so `_lastUpdated=ge…` sees every
deactivation and every mailbox that appeared or went away.

Which mailboxes a resource carries is the directory's one visibility rule
(`store.visibility.visible`), as in every other view.

One renderer at a time (a lease row in `fhir_sync`); the journal is read by the
one follower (`store.follow`), whose cursor is saved in `fhir_sync` after each
run. A large backlog (a national import) is handled by a full pass, which
compares digests and so rewrites only what changed; the first one, into an
empty cache, when a command asks for it (`parallel`), renders on two cores and
loads the tables in one transaction (`fullpass`).

Reading: rows come as plain dicts from the driver's cursor (`_dicts`), only
the columns the renderer declares it reads (`render.*_COLUMNS`); a full pass
reads the mailboxes of a range of holders or sites in one query, and the
cyclic garbage collector is paused (millions of short-lived objects without
cycles: a third of the pass's time went to its collections).

Freshness (docs/architecture.md): `annuaire import` and publications render
before they report success; a server renders in the background from its start
(`BackgroundRenderer`) and its searches answer 503 while the cache is known to
be behind by more than a few seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Integer, Select, delete, func, select, update

from annuaire.fhir import history, ids, packing, render
from annuaire.fhir.render import Rendered
from annuaire.fhir.tables import (
    ORGANIZATION,
    PRACTITIONER,
    ROLE,
    fhir_legal_entity,
    fhir_resource,
    fhir_sync,
    fhir_telecom,
    fhir_token,
    token_param,
    token_system,
)
from annuaire.gcpause import gc_paused
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.dialect import unindexed
from annuaire.store.diff import bulk_insert
from annuaire.store.follow import Cursor, Follower, snapshot, start
from annuaire.store.follow import behind as cursor_behind
from annuaire.store.schema import (
    activity,
    diploma,
    journal,
    mailbox,
    person,
    skill,
    structure,
)
from annuaire.store.visibility import visible

CHUNK = 2000
RESOURCE_COLUMNS = ("kind", "rid", "active", "version", "last_updated", "recorded_at", "digest", "json")
TOKEN_COLUMNS = ("kind", "param", "system", "code", "rid")
TELECOM_COLUMNS = ("mailbox_id", "kind", "rid", "address", "domain", "type")
FULL_PASS_THRESHOLD = 200_000  # journal rows behind: re-render everything instead
LEASE = 300  # seconds
STALE_AFTER = 5.0  # seconds a server's cache may be behind before its searches answer 503
SMALL_BACKLOG = 20_000  # journal rows a refresh renders within a few seconds
PRUNE_EVERY = 3600  # seconds between two prunings of the history by a server's renderer

Progress = Callable[[str, int], None]


@dataclass
class Affected:
    """Resources to re-render, by kind (legal entities by FINESS EJ)."""

    persons: set[int] = field(default_factory=set)
    activities: set[int] = field(default_factory=set)
    structures: set[int] = field(default_factory=set)
    legal: set[str] = field(default_factory=set)
    legal_rids: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.persons) + len(self.activities) + len(self.structures) + len(self.legal) + len(self.legal_rids)


@dataclass
class RefreshStats:
    journal_rows: int = 0
    rendered: int = 0
    changed: int = 0
    full: bool = False
    skipped: bool = False


# --- entry point -------------------------------------------------------------


def refresh(store: Store, *, full: bool = False, wait: bool | float = True,
            progress: Progress | None = None, parallel: bool = False) -> RefreshStats:
    """Bring the rendered cache up to the journal. Returns what was done.

    `wait`: True waits for another renderer to finish, a number waits at most
    that many seconds, False not at all (then `skipped` is True); `full=True`
    re-renders every resource (digests still decide what is written).
    `parallel`: an empty cache is loaded on two cores in one transaction
    (`fullpass`); only for commands (`annuaire import`, `fhir render`): on SQLite
    it keeps other connections out of the file while it writes, which a running
    server's readers and publications must never meet.
    """
    stats = RefreshStats()
    if not _take_lease(store, wait):
        stats.skipped = True
        return stats
    try:
        cursor = load_cursor(store)
        with store.read() as conn:
            empty = conn.execute(select(fhir_resource.c.rid).limit(1)).first() is None
        if not (full or empty):
            before = cursor.to_json()
            follower = Follower(cursor)
            batch = follower.poll(store.engine, columns=(journal.c.id, journal.c.entity, journal.c.key),
                                  limit=FULL_PASS_THRESHOLD + 1)
            if not batch.truncated:
                if batch.rows:
                    stats.journal_rows = len(batch.rows)
                    with store.read() as conn:
                        affected = _affected(conn, batch.rows)
                    _render_affected(store, affected, stats)
                if batch.rows or follower.cursor.to_json() != before:
                    _save_cursor(store, follower.cursor)
                return stats
        stats.full = True
        with snapshot(store.engine) as conn:
            fresh = start(conn)  # before the pass: whatever commits during it comes again
        with store.write() as conn:
            packing.ensure_dictionary(conn, lambda: _samples(conn))
        if empty and parallel:
            from annuaire.fhir import fullpass

            fullpass.load(store, stats, progress)  # (on two cores; nothing to compare)
        else:
            with gc_paused():
                _full_pass(store, stats, progress)
        _save_cursor(store, fresh)
        return stats
    finally:
        _release_lease(store)


# --- lease and position ------------------------------------------------------


def _take_lease(store: Store, wait: bool | float) -> bool:
    deadline = None if wait is True else time.monotonic() + float(wait or 0)
    while True:
        now = int(time.time())
        with store.write() as conn:
            got = conn.execute(
                update(fhir_sync)
                .where((fhir_sync.c.id == 1) & (fhir_sync.c.lease_until < now))
                .values(lease_until=now + LEASE)
            ).rowcount
        if got:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _renew_lease(conn: Connection) -> None:
    """Called for every chunk: a long full pass keeps its lease."""
    conn.execute(update(fhir_sync).where(fhir_sync.c.id == 1).values(lease_until=int(time.time()) + LEASE))


def _release_lease(store: Store) -> None:
    with store.write() as conn:
        conn.execute(update(fhir_sync).where(fhir_sync.c.id == 1).values(lease_until=0))


def load_cursor(store: Store) -> Cursor:
    """How far the cache has followed the journal."""
    with store.read() as conn:
        row = conn.execute(select(fhir_sync.c.journal_id, fhir_sync.c.holes).where(fhir_sync.c.id == 1)).one()
    return Cursor.from_json(row.holes, row.journal_id)


def _save_cursor(store: Store, cursor: Cursor) -> None:
    with store.write() as conn:
        conn.execute(
            update(fhir_sync)
            .where(fhir_sync.c.id == 1)
            .values(journal_id=cursor.position, holes=cursor.to_json(), rendered_at=utc_now())
        )


@dataclass
class Status:
    """How current the cache is: its journal position, and committed rows it has not rendered."""

    position: int
    head: int
    behind: bool
    rendered: bool  # False: never rendered (a first full pass is due)

    @property
    def backlog(self) -> int:
        return max(0, self.head - self.position)

    def unservable(self) -> str | None:
        """Why the cache must not be served however briefly it has been behind (None: it may be):
        never rendered, or more changes behind than a refresh renders in a few seconds. The
        server's searches (`BackgroundRenderer.unavailable`) and its readiness (`/readyz`) say so."""
        if not self.rendered and self.head:
            return "the FHIR cache is being built (first rendering of the directory)"
        if self.backlog > SMALL_BACKLOG:
            return f"the FHIR cache is catching up with {self.backlog:,} changes of the directory"
        return None


def status(store: Store) -> Status:
    cursor = load_cursor(store)
    with snapshot(store.engine) as conn:
        head = conn.execute(select(func.coalesce(func.max(journal.c.id), 0))).scalar_one()
        rendered = conn.execute(select(fhir_resource.c.rid).limit(1)).first() is not None
        late = cursor_behind(conn, cursor)
    return Status(cursor.position, int(head), late or (not rendered and head > 0), rendered)


def behind(store: Store) -> bool:
    """True when the journal has rows the renderer has not followed yet."""
    return status(store).behind


# --- journal rows -> resources -----------------------------------------------


def _chunks(values: Iterable[Any], size: int = 500) -> Iterator[list[Any]]:
    items = list(values)
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _affected(conn: Connection, rows: list) -> Affected:
    keys: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        entity, key = row.entity, row.key
        if entity in ("skill", "diploma"):
            keys["person"].add(key.split("|", 1)[0])
        else:
            keys[entity].add(key)
    out = Affected()
    for chunk in _chunks(keys["person"]):
        ids_ = list(conn.execute(select(person.c.id).where(person.c.id_nat.in_(chunk))).scalars())
        out.persons.update(ids_)
        # (a person's roles carry its boxes tied to a site: their visibility follows the person)
        out.activities.update(conn.execute(select(activity.c.id).where(activity.c.person_id.in_(ids_))).scalars())
    for chunk in _chunks(keys["activity"]):
        for a in conn.execute(
            select(activity.c.id, activity.c.person_id, activity.c.structure_id).where(activity.c.key.in_(chunk))
        ):
            out.activities.add(a.id)
            out.persons.add(a.person_id)
            if a.structure_id is not None:
                out.structures.add(a.structure_id)
    for chunk in _chunks(keys["structure"]):
        out.structures.update(conn.execute(select(structure.c.id).where(structure.c.tech_id.in_(chunk))).scalars())
    for chunk in _chunks(keys["mailbox"]):
        boxes = conn.execute(
            select(mailbox.c.id, mailbox.c.holder, mailbox.c.structure_idnat).where(mailbox.c.address.in_(chunk))
        ).all()
        _mailbox_carriers(conn, boxes, out)
    # Sites bring their legal entity (activeness, partOf) and the one they left.
    for chunk in _chunks(out.structures):
        for s in conn.execute(select(structure.c.finess_ej, structure.c.idnat).where(structure.c.id.in_(chunk))):
            if s.finess_ej:
                out.legal.add(s.finess_ej)
            if s.idnat and s.idnat.startswith("1"):  # (its boxes may fall back to a legal entity of that FINESS)
                out.legal.add(s.idnat[1:])
        for (stored,) in conn.execute(
            select(fhir_resource.c.json).where((fhir_resource.c.kind == ORGANIZATION) & fhir_resource.c.rid.in_(chunk))
        ):
            legal_rid = ids.part_of(packing.unpack(conn, stored))
            if legal_rid is not None:
                out.legal_rids.add(legal_rid)
    return out


def _mailbox_carriers(conn: Connection, boxes: Sequence[Any], out: Affected) -> None:
    """Every resource that holds or may now hold these mailboxes."""
    ids_ = [b.id for b in boxes]
    for chunk in _chunks(ids_):
        for t in conn.execute(select(fhir_telecom.c.kind, fhir_telecom.c.rid).where(fhir_telecom.c.mailbox_id.in_(chunk))):
            {PRACTITIONER: out.persons, ROLE: out.activities}.get(t.kind, out.structures if t.rid > 0 else out.legal_rids).add(t.rid)
    holders = {b.holder for b in boxes if b.holder}
    for chunk in _chunks(holders):
        for p in conn.execute(select(person.c.id).where(person.c.id_nat.in_(chunk))):
            out.persons.add(p.id)
            out.activities.update(conn.execute(select(activity.c.id).where(activity.c.person_id == p.id)).scalars())
    idnats = {b.structure_idnat for b in boxes if b.structure_idnat}
    for chunk in _chunks(idnats):
        out.structures.update(conn.execute(select(structure.c.id).where(structure.c.idnat.in_(chunk))).scalars())
    out.legal.update(i[1:] for i in idnats if i.startswith("1"))


# --- loading rows and rendering ------------------------------------------------

_BOX_COLUMNS = (
    mailbox.c.id, mailbox.c.address, mailbox.c.domain, mailbox.c.type, mailbox.c.holder,
    mailbox.c.structure_idnat, mailbox.c.service, mailbox.c.description, mailbox.c.rank,
    mailbox.c.dematerialisation, mailbox.c.last_updated, visible().label("visible"),
)


def _boxes(conn: Connection, column: Any, keys: list[str] | Select, types: tuple[str, ...]) -> dict[str, list]:
    """Every box (visible or not, tombstones included) of these holders or structures, by key.

    A resource carries the visible ones; all of them date it: a box deleted or hidden
    changes its carrier at the box's (or its holder's, or its structure's) time.
    `keys` may be a SELECT of them (a full pass: those of a range of ids, in one query;
    3× faster than the lists of 500): boxes of other keys it may name are not looked at.
    """
    out: dict[str, list] = defaultdict(list)
    name = column.name
    if isinstance(keys, Select):
        conditions = [column.in_(keys)]
    else:
        conditions = [column.in_(chunk) for chunk in _chunks(sorted(set(keys)))]
    for condition in conditions:
        for b in _dicts(conn, select(*_BOX_COLUMNS).where(condition & mailbox.c.type.in_(types))):
            out[b[name]].append(b)
    return out


def _dicts(conn: Connection, statement: Any) -> list[dict[str, Any]]:
    """The rows of a SELECT as plain dicts, read from the driver's cursor.

    SQLAlchemy's row mappings cost more than the query (a mapping per row, a Python
    `get`): 38 ms against 17 ms for 2,000 persons. The driver's values are used as
    they are: on SQLite booleans stay 0/1, which the renderer only tests (it writes
    bool(...) or a constant)."""
    result = conn.execute(statement)
    try:
        keys = list(result.keys())
        return [dict(zip(keys, row, strict=False)) for row in result.cursor.fetchall()]
    finally:
        result.close()


def _place(rendered: Rendered, records: Iterable[Any], boxes: Iterable[Any]) -> Rendered:
    """Date a rendered resource by the latest change of the records and boxes it is made of."""
    stamps = [r["last_updated"] for r in records]
    stamps += [b["last_updated"] for b in boxes]
    rendered.changed_at = max(filter(None, stamps), default="")
    return rendered


def _columns(table: Any, names: Iterable[str]) -> list:
    return [table.c[name] for name in names]


def _grouped(rows: list[dict[str, Any]], key: str) -> dict[Any, list]:
    out: dict[Any, list] = defaultdict(list)
    for row in rows:
        out[row[key]].append(row)
    return out


def _ids(column: Any, ids_: list[int], span: bool) -> Any:
    """`column IN ids`, or a range when the ids are every id of a range (full pass)."""
    return column.between(ids_[0], ids_[-1]) if span else column.in_(ids_)


# The columns read: those the renderer reads (render.*_COLUMNS), and the time of the change.
_PERSON = _columns(person, (*render.PRACTITIONER_COLUMNS, "last_updated"))
_ROLE = _columns(activity, (*render.ROLE_COLUMNS, "structure_id", "last_updated"))


def _qualifications(conn: Connection, table: Any, person_ids: list[int], span: bool) -> dict[int, list]:
    return _grouped(_dicts(conn, select(table.c.person_id, *_columns(table, render.QUALIFICATION_COLUMNS))
                           .where(_ids(table.c.person_id, person_ids, span) & table.c.active)), "person_id")


def _render_persons(conn: Connection, person_ids: list[int], span: bool = False) -> list[Rendered]:
    persons = _dicts(conn, select(*_PERSON).where(_ids(person.c.id, person_ids, span)))
    by_id = {p["id"]: p for p in persons}
    # (a change of savoir-faire or diplomas also changes the person's version and time)
    skills = _qualifications(conn, skill, person_ids, span)
    diplomas = _qualifications(conn, diploma, person_ids, span)
    sites: dict[int, set[str]] = defaultdict(set)  # person -> idnat of its active activities' sites
    authorities: dict[int, list] = defaultdict(list)
    activities: dict[int, list] = defaultdict(list)  # (ended ones too: they date the practitioner)
    for a in _dicts(conn,
        select(activity.c.person_id, activity.c.registration_authority, activity.c.active, activity.c.last_updated,
               structure.c.idnat)
        .select_from(activity.outerjoin(structure, structure.c.id == activity.c.structure_id))
        .where(_ids(activity.c.person_id, person_ids, span))
    ):
        activities[a["person_id"]].append(a)
        if a["active"]:
            authorities[a["person_id"]].append(a["registration_authority"])
            if a["idnat"]:
                sites[a["person_id"]].add(a["idnat"])
    holders = select(person.c.id_nat).where(_ids(person.c.id, person_ids, span)) if span else [p["id_nat"] for p in persons]
    boxes = _boxes(conn, mailbox.c.holder, holders, ("PER", "CAB"))
    none: tuple = ()
    out = []
    for pid in person_ids:
        p = by_id.get(pid)
        if p is None:
            continue
        own = boxes.get(p["id_nat"], none)
        if own:
            at = sites.get(pid, none)
            own = [b for b in own if b["type"] == "CAB" or not b["structure_idnat"] or b["structure_idnat"] not in at]
        shown = [b for b in own if b["visible"]]
        out.append(_place(render.practitioner(p, skills.get(pid, none), diplomas.get(pid, none), shown,
                                              authorities.get(pid, none)),
                          [p, *activities.get(pid, none)], own))
    return out


def _render_activities(conn: Connection, activity_ids: list[int], span: bool = False) -> list[Rendered]:
    rows = _dicts(conn,
        select(*_ROLE, person.c.id_nat, structure.c.idnat)
        .select_from(
            activity.join(person, person.c.id == activity.c.person_id).outerjoin(
                structure, structure.c.id == activity.c.structure_id
            )
        )
        .where(_ids(activity.c.id, activity_ids, span))
    )
    holders = (
        select(person.c.id_nat).join(activity, activity.c.person_id == person.c.id)
        .where(_ids(activity.c.id, activity_ids, span))
        if span else [r["id_nat"] for r in rows if r["idnat"]]
    )
    boxes = _boxes(conn, mailbox.c.holder, holders, ("PER",))
    none: tuple = ()
    out = []
    for r in rows:
        own = boxes.get(r["id_nat"], none) if r["idnat"] else none
        if own:
            own = [b for b in own if b["structure_idnat"] == r["idnat"]]
        shown = [b for b in own if b["visible"]] if r["active"] and own else []
        out.append(_place(render.role(r, r["structure_id"], shown), (r,), own))
    return out


def _legal_rids(conn: Connection, finesses: Iterable[str], create: bool = True) -> dict[str, int]:
    """The stable number of each legal entity, created on first sight (`create`)."""
    wanted = sorted({f for f in finesses if f})
    known: dict[str, int] = {}
    for chunk in _chunks(wanted):
        known.update({r.finess: -r.id for r in conn.execute(select(fhir_legal_entity).where(fhir_legal_entity.c.finess.in_(chunk)))})
    missing = [f for f in wanted if f not in known]
    if missing and create:
        conn.execute(fhir_legal_entity.insert(), [{"finess": f} for f in missing])
        for chunk in _chunks(missing):
            known.update({r.finess: -r.id for r in conn.execute(select(fhir_legal_entity).where(fhir_legal_entity.c.finess.in_(chunk)))})
    return known


def _sectors(conn: Connection, structure_ids: list[int], span: bool = False) -> dict[int, str]:
    out: dict[int, str] = {}
    for r in conn.execute(
        select(activity.c.structure_id, func.min(activity.c.sector_code))
        .where(_ids(activity.c.structure_id, structure_ids, span) & activity.c.active
               & activity.c.sector_code.is_not(None))
        .group_by(activity.c.structure_id)
    ):
        out[r[0]] = r[1]
    return out


def _all_sectors(conn: Connection) -> dict[int, str]:
    """`_sectors` of every site, from one scan of the activities (a full pass). Looking up
    the activities of each site reads each of them at random: 145 µs a site at national
    scale, against 3.5 s for the 428 k sites this way (SQLite: `+structure_id`, not through
    the index of sites, which would read them in that same random order)."""
    group = unindexed(conn, "structure_id")
    return dict(conn.exec_driver_sql(
        "SELECT structure_id, min(sector_code) FROM activity "
        f"WHERE active AND sector_code IS NOT NULL AND structure_id IS NOT NULL GROUP BY {group}").all())


def _render_structures(conn: Connection, structure_ids: list[int], span: bool = False,
                       create: bool = True, sectors: dict[int, str] | None = None) -> list[Rendered]:
    """`create=False`: legal entities are numbered beforehand (`number_legal_entities`); one not
    numbered yet (a site written after the numbering) is left out of partOf, for the journal to
    bring the site again. `sectors`: those of every site (`_all_sectors`), else looked up."""
    rows = _dicts(conn, select(structure).where(_ids(structure.c.id, structure_ids, span)))
    legal = _legal_rids(conn, (r["finess_ej"] for r in rows), create)
    if sectors is None:
        sectors = _sectors(conn, structure_ids, span)
    idnats = (select(structure.c.idnat).where(_ids(structure.c.id, structure_ids, span)) if span
              else [r["idnat"] for r in rows if r["idnat"]])
    boxes = _boxes(conn, mailbox.c.structure_idnat, idnats, ("ORG", "APP"))
    out = []
    for r in rows:
        own = boxes.get(r["idnat"], ()) if r["idnat"] else ()
        shown = [b for b in own if b["visible"]] if r["active"] else []
        legal_rid = legal.get(r["finess_ej"]) if r["finess_ej"] else None
        out.append(_place(render.site(r, sectors.get(r["id"]), legal_rid, shown), [r], own))
    return out


def _render_legal(conn: Connection, finesses: set[str], rids: set[int], create: bool = True) -> list[Rendered]:
    """Legal entities (FINESS EJ), from the sites naming them: active while one of them is.

    A box attached to `1`+FINESS EJ is carried by the legal entity when no active site
    has that national id (the referential lists sites).
    """
    real: set[str] = set()  # only FINESS numbers that some site names as its EJ
    for chunk in _chunks(finesses):
        real.update(conn.execute(select(structure.c.finess_ej).where(structure.c.finess_ej.in_(chunk)).distinct()).scalars())
    known = _legal_rids(conn, real, create)
    for chunk in _chunks([-r for r in rids]):
        known.update({r.finess: -r.id for r in conn.execute(select(fhir_legal_entity).where(fhir_legal_entity.c.id.in_(chunk)))})
    if not known:
        return []
    active: set[str] = set()
    latest: dict[str, str] = {}
    for chunk in _chunks(list(known)):
        for f, is_active, last in conn.execute(
            select(structure.c.finess_ej, func.max(structure.c.active.cast(Integer)), func.max(structure.c.last_updated))
            .where(structure.c.finess_ej.in_(chunk)).group_by(structure.c.finess_ej)
        ):
            latest[f] = last
            if is_active:
                active.add(f)
    idnats = ["1" + f for f in known]
    sites: set[str] = set()
    for chunk in _chunks(idnats):
        sites.update(conn.execute(
            select(structure.c.idnat).where(structure.c.idnat.in_(chunk) & structure.c.active)).scalars())
    boxes = _boxes(conn, mailbox.c.structure_idnat, [i for i in idnats if i not in sites], ("ORG", "APP"))
    out = []
    for f, rid in known.items():
        own = boxes.get("1" + f, ())
        shown = [b for b in own if b["visible"]] if f in active else []
        rendered = render.legal_entity(rid, f, f in active, None, shown)
        rendered.changed_at = max([latest.get(f, ""), *(b["last_updated"] for b in own)])
        out.append(rendered)
    return out


def _samples(conn: Connection, each: int = 1000) -> Iterator[bytes]:
    """Bodies to train the compression dictionary on: the first `each` practitioners, roles
    and sites (nothing written: legal entities not numbered yet are left out of partOf)."""
    stamp = utc_now()
    for table, fn in ((person, _render_persons), (activity, _render_activities)):
        ids_ = list(conn.execute(select(table.c.id).order_by(table.c.id).limit(each)).scalars())
        if ids_:
            yield from (r.finish(1, stamp) for r in fn(conn, ids_))
    ids_ = list(conn.execute(select(structure.c.id).order_by(structure.c.id).limit(each)).scalars())
    if ids_:
        yield from (r.finish(1, stamp) for r in _render_structures(conn, ids_, create=False))


# --- writing -----------------------------------------------------------------


def _packer(store: Store) -> packing.Pack:
    """How this refresh compresses bodies, looked up once for all its batches (the newest
    dictionary changes only when a full pass trains the first one, before it renders). Read
    from the primary, which the bodies are written to."""
    with store.primary.read() as conn:
        return packing.packer(conn)


def _write(conn: Connection, items: list[Rendered], stats: RefreshStats, pack: packing.Pack) -> None:
    """Store what changed: new version, the time of the change, tokens and telecom rows.

    The time is the latest of the records the resource is made of; it never goes back
    (a resource that lost a box whose holder changed keeps a later time it had).
    """
    if not items:
        return
    now = utc_now()
    by_kind: dict[str, list[Rendered]] = defaultdict(list)
    for r in items:
        by_kind[r.kind].append(r)
    for kind, group in by_kind.items():
        rids = [r.rid for r in group]
        existing = {
            row.rid: (row.digest, row.version, row.last_updated)
            for chunk in _chunks(rids, 900)
            for row in conn.execute(
                select(fhir_resource.c.rid, fhir_resource.c.digest, fhir_resource.c.version,
                       fhir_resource.c.last_updated).where(
                    (fhir_resource.c.kind == kind) & fhir_resource.c.rid.in_(chunk)
                )
            )
        }
        changed: list[int] = []
        rows: list[tuple] = []
        tokens: list[tuple] = []
        telecoms: list[tuple] = []
        for r in group:
            dig = r.body_digest()
            old = existing.get(r.rid)
            if old is not None and old[0] == dig:
                continue
            version = 1 if old is None else old[1] + 1
            stamp = r.changed_at or now
            if old is not None and stamp <= old[2]:
                stamp = old[2]
            changed.append(r.rid)
            _rows(r, dig, version, stamp, now, rows, tokens, telecoms, pack)
        stats.rendered += len(group)
        if not changed:
            continue
        stats.changed += len(changed)
        for chunk in _chunks([c for c in changed if c in existing], 900):
            where = lambda t, kind=kind, chunk=chunk: (t.c.kind == kind) & t.c.rid.in_(chunk)
            history.keep(conn, kind, chunk, now)
            conn.execute(delete(fhir_resource).where(where(fhir_resource)))
            conn.execute(delete(fhir_token).where(where(fhir_token)))
            conn.execute(delete(fhir_telecom).where(where(fhir_telecom)))
        bulk_insert(conn, "fhir_resource", RESOURCE_COLUMNS, rows)
        bulk_insert(conn, "fhir_token", TOKEN_COLUMNS, tokens)
        bulk_insert(conn, "fhir_telecom", TELECOM_COLUMNS, telecoms)


def _rows(r: Rendered, dig: int, version: int, stamp: str, now: str, resources: list, tokens: list, telecoms: list,
          pack: packing.Pack) -> None:
    """The rows of one rendered resource, written `now`: its `fhir_resource` row (the body
    compressed by `pack`), its tokens and its telecom rows."""
    kind, rid = r.kind, r.rid
    resources.append((kind, rid, r.active, version, stamp, now, dig, pack(r.finish(version, stamp))))
    tokens.extend((kind, token_param(p), token_system(s), c, rid) for p, s, c in r.tokens)
    telecoms.extend((b["id"], kind, rid, b["address"], b["domain"], b["type"]) for b in r.mailboxes)


def _render_affected(store: Store, affected: Affected, stats: RefreshStats) -> None:
    # Roles and sites first, then practitioners and legal entities: a mailbox
    # moving between carriers is removed from one and added to the other in
    # the same run.
    jobs: list[tuple[Callable[[Connection, list], list[Rendered]], list]] = [
        (_render_activities, sorted(affected.activities)),
        (_render_structures, sorted(affected.structures)),
        (_render_persons, sorted(affected.persons)),
    ]
    pack = _packer(store)
    for fn, keys in jobs:
        for chunk in _chunks(keys, CHUNK):
            with store.write() as conn:
                _renew_lease(conn)
                _write(conn, fn(conn, chunk), stats, pack)
    if affected.legal or affected.legal_rids:
        with store.write() as conn:
            _write(conn, _render_legal(conn, affected.legal, affected.legal_rids), stats, pack)


def _full_pass(store: Store, stats: RefreshStats, progress: Progress | None) -> None:
    """Render every resource; unchanged ones are not rewritten."""
    pack = _packer(store)
    for table, fn, label in (
        (person, _render_persons, "Practitioner"),
        (activity, _render_activities, "PractitionerRole"),
        (structure, _render_structures, "Organization"),
    ):
        after = 0
        while True:
            with store.read() as conn:
                ids_ = list(conn.execute(select(table.c.id).where(table.c.id > after).order_by(table.c.id).limit(CHUNK)).scalars())
            if not ids_:
                break
            with store.write() as conn:
                _renew_lease(conn)
                _write(conn, fn(conn, ids_, True), stats, pack)
            after = ids_[-1]
            if progress:
                progress(label, len(ids_))
    with store.read() as conn:
        finesses = set(conn.execute(select(structure.c.finess_ej).where(structure.c.finess_ej.is_not(None)).distinct()).scalars())
    for chunk in _chunks(sorted(finesses), CHUNK):
        with store.write() as conn:
            _write(conn, _render_legal(conn, set(chunk), set()), stats, pack)
        if progress:
            progress("Organization", len(chunk))


# --- the server's renderer ---------------------------------------------------------


_RENDERERS: weakref.WeakSet[BackgroundRenderer] = weakref.WeakSet()


class BackgroundRenderer:
    """A daemon thread that keeps the cache current while the server runs, and knows how current it is.

    Started with the server (not at the first request). Every `interval` it reads
    the cache's status; when behind it renders (if no other process holds the
    lease) and looks again at once. `unavailable()` tells the request handlers
    when the cache must not be served: never rendered, a backlog larger than a
    few seconds of work, or behind for longer than `stale_after`.
    """

    def __init__(self, store: Store, interval: float = 0.5, stale_after: float = STALE_AFTER,
                 history_days: int = history.DEFAULT_DAYS) -> None:
        self.store = store
        self.history_days = history_days
        self._pruned = 0.0
        self.interval = interval
        self.stale_after = stale_after
        self.state: Status | None = None
        self.behind_since: float | None = None
        self.checked = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="fhir-renderer", daemon=True)
            self._thread.start()
            _RENDERERS.add(self)

    def stop(self, wait: float = 0.0) -> None:
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join(wait)

    @staticmethod
    def stop_all(wait: float = 10.0) -> None:
        """Stop every renderer of this process: an app dropped without disposing its store
        (a test) must not go on rendering into whatever database that URL names next."""
        for renderer in list(_RENDERERS):
            renderer.stop(wait)

    def check(self) -> Status:
        state = status(self.store)
        if state.behind:
            if self.behind_since is None:
                self.behind_since = time.monotonic()
        else:
            self.behind_since = None
        self.state = state
        self.checked.set()
        return state

    def _run(self) -> None:
        failures = 0
        # (stops with the store: tests, and embedders that dispose it; or a store gone for a minute)
        while not self._stop.is_set() and not self.store.closed and failures < 120:
            try:
                state = self.check()
                failures = 0
                if state.behind and not refresh(self.store, wait=False).skipped:
                    continue  # look again at once: more may have come meanwhile
                if time.monotonic() - self._pruned > PRUNE_EVERY:
                    with self.store.write() as conn:
                        history.prune(conn, self.history_days)
                    self._pruned = time.monotonic()
            except Exception:  # noqa: BLE001 - keep following; the next round retries
                failures += 1
                self.checked.set()
            self._stop.wait(self.interval)

    @property
    def position(self) -> int | None:
        return None if self.state is None else self.state.position

    def unavailable(self) -> str | None:
        """Why the cache must not be served now (None: serve it)."""
        if self.state is None:
            return "the FHIR cache is being checked after a start"
        state = self.state
        if not state.behind or self.behind_since is None:
            return None
        late = time.monotonic() - self.behind_since
        reason = state.unservable() or (
            f"the FHIR cache is catching up with {state.backlog:,} changes of the directory"
            if late > self.stale_after else None)
        return f"{reason} (behind for {late:.0f} s)" if reason else None
