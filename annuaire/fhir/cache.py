"""The renderer: keeps `fhir_resource` (and its telecom/token indexes) in step
with the store by following the append-only journal.

Why a follower and not rendering inside each writer: the writers (referential
import, mailbox publication) know nothing about FHIR, and the journal already
says which records changed. The follower maps each journal row to the
resources it touches (a mailbox change touches its old and new carriers, an
activity its role, its practitioner and its site), re-renders them and writes
only those whose content really changed: then `version` goes +1 and
`last_updated` becomes the render time, so `_lastUpdated=ge…` sees every
deactivation and every mailbox that appeared or went away.

One renderer at a time (a lease row in `fhir_sync`); the journal position is
saved after each run. Journal ids that were skipped (a concurrent PostgreSQL
transaction not yet committed) are remembered as holes and re-read for a
while. A large backlog (a national import) is handled by a full pass, which
compares digests and so rewrites only what changed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Connection, delete, func, select, update

from annuaire.fhir import render
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
)
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.diff import bulk_insert
from annuaire.store.schema import activity, diploma, journal, mailbox, person, skill, structure

CHUNK = 2000
RESOURCE_COLUMNS = ("kind", "rid", "active", "version", "last_updated", "digest", "json")
FULL_PASS_THRESHOLD = 200_000  # journal rows behind: re-render everything instead
HOLE_TTL = 600  # seconds a skipped journal id is waited for
LEASE = 300  # seconds

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


def refresh(store: Store, *, full: bool = False, wait: bool = True, progress: Progress | None = None) -> RefreshStats:
    """Bring the rendered cache up to the journal. Returns what was done.

    `wait=False` returns at once (skipped=True) when another renderer holds
    the lease; `full=True` re-renders every resource (digests still decide
    what is written).
    """
    stats = RefreshStats()
    if not _take_lease(store, wait):
        stats.skipped = True
        return stats
    try:
        with store.read() as conn:
            state = conn.execute(select(fhir_sync).where(fhir_sync.c.id == 1)).mappings().one()
            head = conn.execute(select(func.max(journal.c.id))).scalar() or 0
            empty = conn.execute(select(fhir_resource.c.rid).limit(1)).first() is None
        position, holes = state["journal_id"], [tuple(h) for h in json.loads(state["holes"])]
        if not full and not empty and head - position > FULL_PASS_THRESHOLD:
            full = True
        if full or (empty and head == 0 and position == 0) or empty:
            stats.full = True
            _full_pass(store, stats, progress)
            _save_position(store, head, [])
            return stats
        if head <= position and not holes:
            return stats
        with store.read() as conn:
            rows = conn.execute(
                select(journal.c.id, journal.c.entity, journal.c.key)
                .where((journal.c.id > position) & (journal.c.id <= head))
                .order_by(journal.c.id)
            ).all()
            if holes:
                rows += conn.execute(
                    select(journal.c.id, journal.c.entity, journal.c.key).where(
                        journal.c.id.in_([h[0] for h in holes])
                    )
                ).all()
            stats.journal_rows = len(rows)
            affected = _affected(conn, rows)
        new_holes = _holes(position, head, rows, holes)
        _render_affected(store, affected, stats)
        _save_position(store, head, new_holes)
        return stats
    finally:
        _release_lease(store)


# --- lease and position ------------------------------------------------------


def _take_lease(store: Store, wait: bool) -> bool:
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
        if not wait:
            return False
        time.sleep(0.05)


def _renew_lease(conn: Connection) -> None:
    """Called for every chunk: a long full pass keeps its lease."""
    conn.execute(update(fhir_sync).where(fhir_sync.c.id == 1).values(lease_until=int(time.time()) + LEASE))


def _release_lease(store: Store) -> None:
    with store.write() as conn:
        conn.execute(update(fhir_sync).where(fhir_sync.c.id == 1).values(lease_until=0))


def _save_position(store: Store, head: int, holes: list[tuple[int, float]]) -> None:
    with store.write() as conn:
        conn.execute(
            update(fhir_sync)
            .where(fhir_sync.c.id == 1)
            .values(journal_id=head, holes=json.dumps(holes), rendered_at=utc_now())
        )


def _holes(position: int, head: int, rows: list, old: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Journal ids between the old and new position that were not visible yet."""
    seen = {r.id for r in rows}
    now = time.time()
    kept = [(i, t) for i, t in old if i not in seen and now - t < HOLE_TTL]
    if head - position - len([i for i in seen if i > position]) <= 10_000:
        kept += [(i, now) for i in range(position + 1, head + 1) if i not in seen]
    return kept


def behind(store: Store) -> bool:
    """True when the journal has rows the renderer has not followed yet."""
    with store.read() as conn:
        head = conn.execute(select(func.max(journal.c.id))).scalar() or 0
        state = conn.execute(select(fhir_sync.c.journal_id, fhir_sync.c.holes).where(fhir_sync.c.id == 1)).one()
    return head > state.journal_id or state.holes != "[]"


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
        out.persons.update(conn.execute(select(person.c.id).where(person.c.id_nat.in_(chunk))).scalars())
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
        for s in conn.execute(select(structure.c.finess_ej).where(structure.c.id.in_(chunk))):
            if s.finess_ej:
                out.legal.add(s.finess_ej)
        for (doc,) in conn.execute(
            select(fhir_resource.c.json).where((fhir_resource.c.kind == ORGANIZATION) & fhir_resource.c.rid.in_(chunk))
        ):
            marker = b'"partOf":{"reference":"Organization/001-02-'
            at = bytes(doc).find(marker)
            if at >= 0:
                end = bytes(doc).index(b'"', at + len(marker))
                out.legal_rids.add(-int(bytes(doc)[at + len(marker) : end]))
    return out


def _mailbox_carriers(conn: Connection, boxes: list, out: Affected) -> None:
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
    mailbox.c.dematerialisation,
)
_PUBLIC_BOX = mailbox.c.active & ~mailbox.c.liste_rouge


def _person_boxes(conn: Connection, id_nats: list[str]) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    if id_nats:
        rows = conn.execute(
            select(*_BOX_COLUMNS).where(mailbox.c.holder.in_(id_nats) & _PUBLIC_BOX & mailbox.c.type.in_(("PER", "CAB")))
        ).mappings()
        for b in rows:
            out[b["holder"]].append(b)
    return out


def _structure_boxes(conn: Connection, idnats: list[str]) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    if idnats:
        rows = conn.execute(
            select(*_BOX_COLUMNS).where(
                mailbox.c.structure_idnat.in_(idnats) & _PUBLIC_BOX & mailbox.c.type.in_(("ORG", "APP"))
            )
        ).mappings()
        for b in rows:
            out[b["structure_idnat"]].append(b)
    return out


def _ids(column: Any, ids_: list[int], span: bool) -> Any:
    """`column IN ids`, or a range when the ids are every id of a range (full pass)."""
    return column.between(ids_[0], ids_[-1]) if span else column.in_(ids_)


def _render_persons(conn: Connection, person_ids: list[int], span: bool = False) -> list[Rendered]:
    persons = conn.execute(select(person).where(_ids(person.c.id, person_ids, span))).mappings().all()
    by_id = {p["id"]: p for p in persons}
    skills: dict[int, list] = defaultdict(list)
    for s in conn.execute(select(skill).where(_ids(skill.c.person_id, person_ids, span) & skill.c.active)).mappings():
        skills[s["person_id"]].append(s)
    diplomas: dict[int, list] = defaultdict(list)
    for d in conn.execute(select(diploma).where(_ids(diploma.c.person_id, person_ids, span) & diploma.c.active)).mappings():
        diplomas[d["person_id"]].append(d)
    sites: dict[int, set[str]] = defaultdict(set)  # person -> idnat of its active activities' sites
    authorities: dict[int, list] = defaultdict(list)
    for a in conn.execute(
        select(activity.c.person_id, activity.c.registration_authority, structure.c.idnat)
        .select_from(activity.outerjoin(structure, structure.c.id == activity.c.structure_id))
        .where(_ids(activity.c.person_id, person_ids, span) & activity.c.active)
    ):
        authorities[a.person_id].append(a.registration_authority)
        if a.idnat:
            sites[a.person_id].add(a.idnat)
    boxes = _person_boxes(conn, [p["id_nat"] for p in persons])
    out = []
    for pid in person_ids:
        p = by_id.get(pid)
        if p is None:
            continue
        own = [
            b for b in boxes.get(p["id_nat"], ())
            if b["type"] == "CAB" or not b["structure_idnat"] or b["structure_idnat"] not in sites[pid]
        ]
        out.append(render.practitioner(p, skills[pid], diplomas[pid], own, authorities[pid]))
    return out


def _render_activities(conn: Connection, activity_ids: list[int], span: bool = False) -> list[Rendered]:
    rows = conn.execute(
        select(activity, person.c.id_nat, person.c.active.label("person_active"), structure.c.idnat)
        .select_from(
            activity.join(person, person.c.id == activity.c.person_id).outerjoin(
                structure, structure.c.id == activity.c.structure_id
            )
        )
        .where(_ids(activity.c.id, activity_ids, span))
    ).mappings().all()
    boxes = _person_boxes(conn, list({r["id_nat"] for r in rows if r["active"]}))
    out = []
    for r in rows:
        own = [b for b in boxes.get(r["id_nat"], ()) if b["type"] == "PER" and r["idnat"] and b["structure_idnat"] == r["idnat"]]
        out.append(render.role(r, r["structure_id"], own))
    return out


def _legal_rids(conn: Connection, finesses: Iterable[str]) -> dict[str, int]:
    """The stable number of each legal entity, created on first sight."""
    wanted = sorted(set(f for f in finesses if f))
    known: dict[str, int] = {}
    for chunk in _chunks(wanted):
        known.update({r.finess: -r.id for r in conn.execute(select(fhir_legal_entity).where(fhir_legal_entity.c.finess.in_(chunk)))})
    missing = [f for f in wanted if f not in known]
    if missing:
        conn.execute(fhir_legal_entity.insert(), [{"finess": f} for f in missing])
        for chunk in _chunks(missing):
            known.update({r.finess: -r.id for r in conn.execute(select(fhir_legal_entity).where(fhir_legal_entity.c.finess.in_(chunk)))})
    return known


def _sectors(conn: Connection, structure_ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for r in conn.execute(
        select(activity.c.structure_id, func.min(activity.c.sector_code))
        .where(activity.c.structure_id.in_(structure_ids) & activity.c.active & activity.c.sector_code.is_not(None))
        .group_by(activity.c.structure_id)
    ):
        out[r[0]] = r[1]
    return out


def _render_structures(conn: Connection, structure_ids: list[int], span: bool = False) -> list[Rendered]:
    rows = conn.execute(select(structure).where(_ids(structure.c.id, structure_ids, span))).mappings().all()
    legal = _legal_rids(conn, (r["finess_ej"] for r in rows))
    sectors = _sectors(conn, structure_ids)
    boxes = _structure_boxes(conn, [r["idnat"] for r in rows if r["idnat"] and r["active"]])
    return [
        render.site(r, sectors.get(r["id"]), legal.get(r["finess_ej"]) if r["finess_ej"] else None, boxes.get(r["idnat"], ()) if r["idnat"] else ())
        for r in rows
    ]


def _render_legal(conn: Connection, finesses: set[str], rids: set[int]) -> list[Rendered]:
    real: set[str] = set()  # only FINESS numbers that some site names as its EJ
    for chunk in _chunks(finesses):
        real.update(conn.execute(select(structure.c.finess_ej).where(structure.c.finess_ej.in_(chunk)).distinct()).scalars())
    known = _legal_rids(conn, real)
    for chunk in _chunks([-r for r in rids]):
        known.update({r.finess: -r.id for r in conn.execute(select(fhir_legal_entity).where(fhir_legal_entity.c.id.in_(chunk)))})
    if not known:
        return []
    finess_list = list(known)
    active: set[str] = set()
    sector: dict[str, str] = {}
    for chunk in _chunks(finess_list):
        active.update(conn.execute(
            select(structure.c.finess_ej).where(structure.c.finess_ej.in_(chunk) & structure.c.active).distinct()
        ).scalars())
    # EJ boxes: attached to "1"+FINESS EJ when no site carries that national id.
    idnats = ["1" + f for f in finess_list]
    sites = set()
    for chunk in _chunks(idnats):
        sites.update(conn.execute(select(structure.c.idnat).where(structure.c.idnat.in_(chunk))).scalars())
    boxes = _structure_boxes(conn, [i for i in idnats if i not in sites])
    return [
        render.legal_entity(rid, f, f in active, sector.get(f), boxes.get("1" + f, ()) if f in active else ())
        for f, rid in known.items()
    ]


# --- writing -----------------------------------------------------------------


def _write(conn: Connection, items: list[Rendered], stats: RefreshStats) -> None:
    """Store what changed: new version, render time, tokens and telecom rows."""
    if not items:
        return
    now = utc_now()
    by_kind: dict[str, list[Rendered]] = defaultdict(list)
    for r in items:
        by_kind[r.kind].append(r)
    for kind, group in by_kind.items():
        rids = [r.rid for r in group]
        existing = {
            row.rid: (row.digest, row.version)
            for chunk in _chunks(rids, 900)
            for row in conn.execute(
                select(fhir_resource.c.rid, fhir_resource.c.digest, fhir_resource.c.version).where(
                    (fhir_resource.c.kind == kind) & fhir_resource.c.rid.in_(chunk)
                )
            )
        }
        changed, rows, tokens, telecoms = [], [], [], []
        for r in group:
            dig = r.body_digest()
            old = existing.get(r.rid)
            if old is not None and old[0] == dig:
                continue
            version = 1 if old is None else old[1] + 1
            changed.append(r.rid)
            rows.append((kind, r.rid, r.active, version, now, dig, r.finish(version, now)))
            tokens.extend((kind, p, s, c, r.rid) for p, s, c in r.tokens)
            telecoms.extend((b["id"], kind, r.rid, b["address"], b["domain"], b["type"]) for b in r.mailboxes)
        stats.rendered += len(group)
        if not changed:
            continue
        stats.changed += len(changed)
        for chunk in _chunks([c for c in changed if c in existing], 900):
            where = lambda t: (t.c.kind == kind) & t.c.rid.in_(chunk)  # noqa: E731
            conn.execute(delete(fhir_resource).where(where(fhir_resource)))
            conn.execute(delete(fhir_token).where(where(fhir_token)))
            conn.execute(delete(fhir_telecom).where(where(fhir_telecom)))
        bulk_insert(conn, "fhir_resource", RESOURCE_COLUMNS, rows)
        bulk_insert(conn, "fhir_token", ("kind", "param", "system", "code", "rid"), tokens)
        bulk_insert(conn, "fhir_telecom", ("mailbox_id", "kind", "rid", "address", "domain", "type"), telecoms)


def _render_affected(store: Store, affected: Affected, stats: RefreshStats) -> None:
    # Roles and sites first, then practitioners and legal entities: a mailbox
    # moving between carriers is removed from one and added to the other in
    # the same run.
    jobs: list[tuple[Callable[[Connection, list], list[Rendered]], list]] = [
        (_render_activities, sorted(affected.activities)),
        (_render_structures, sorted(affected.structures)),
        (_render_persons, sorted(affected.persons)),
    ]
    for fn, keys in jobs:
        for chunk in _chunks(keys, CHUNK):
            with store.write() as conn:
                _renew_lease(conn)
                _write(conn, fn(conn, chunk), stats)
    if affected.legal or affected.legal_rids:
        with store.write() as conn:
            _write(conn, _render_legal(conn, affected.legal, affected.legal_rids), stats)


def _full_pass(store: Store, stats: RefreshStats, progress: Progress | None) -> None:
    """Render every resource; unchanged ones are not rewritten."""
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
                _write(conn, fn(conn, ids_, True), stats)
            after = ids_[-1]
            if progress:
                progress(label, len(ids_))
    with store.read() as conn:
        finesses = set(conn.execute(select(structure.c.finess_ej).where(structure.c.finess_ej.is_not(None)).distinct()).scalars())
    for chunk in _chunks(sorted(finesses), CHUNK):
        with store.write() as conn:
            _write(conn, _render_legal(conn, set(chunk), set()), stats)
        if progress:
            progress("Organization", len(chunk))


# --- background follower for the server --------------------------------------


class Follower:
    """A daemon thread that keeps the cache current while the server runs."""

    def __init__(self, store: Store, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="fhir-renderer", daemon=True).start()

    def _run(self) -> None:
        failures = 0
        while failures < 60:  # a store gone for a minute (shut down, dropped): stop
            try:
                if behind(self.store):
                    refresh(self.store, wait=False)
                failures = 0
            except Exception:  # noqa: BLE001 - keep following; the next round retries
                failures += 1
            time.sleep(self.interval)
