"""Daily import of the national referential (PS_LibreAcces): the file REPLACES the state.

One import = one write transaction, for every file it names: persons,
structures and activities from `Personne_activite`, savoir-faire from
`SavoirFaire`, diplomas from `Dipl_AutExerc`, each through the diff engine
(created / updated / deactivated / unchanged, journal), then the national
MSSanté files given with it (`mailboxes.national`). Any error leaves the
store as it was: the day's referential is never committed without its
mailboxes.

Guards, because the file replaces the state: a day must bring its three
files (a lone `Personne_activite` would deactivate every savoir-faire… of
nobody, and a lone child file says nothing of who left); a file dated in the
future is refused (it would make every later file "older"); and an import that
would deactivate more than `max_deactivation` (default 5 %) of the active
persons, activities or structures is refused with the figures (a truncated
or header-only file). `force` overrides the last two and the date order.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import compress
from operator import not_
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, bindparam, func, insert, select, update

from annuaire import formats
from annuaire.config import Settings
from annuaire.errors import Conflict, ImportFileError, MassDeactivation
from annuaire.gcpause import gc_paused
from annuaire.nationalfiles import pace
from annuaire.nationalfiles.lines import Lines
from annuaire.nationalfiles.sources import Source, find_sources
from annuaire.progress import Reporter, Steps, steps
from annuaire.referential import nomenclatures, prints, records
from annuaire.referential.changed_persons import AHEAD_MIN_SIZE, Ahead, compare, compare_child
from annuaire.referential.firstload import (
    APPLICATION,
    COLUMNS,
    FirstLoad,
    Scratch,
    postgresql_schema,
    remove_stale,
    sqlite_schema,
)
from annuaire.referential.groups import Groups
from annuaire.referential.line_records import (
    CHILD_KINDS,
    CHILDREN,
    CodeCheck,
    Orphans,
    activity_key,
    child_lines,
    code_check,
    structure_of,
)
from annuaire.referential.selected import selected_lines
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.diff import Counts, TableSync, journal_creations
from annuaire.store.digest import digest
from annuaire.store.schema import activity, diploma, person, run, skill, structure
from annuaire.store.select import select_in

REFERENTIAL_KINDS = (formats.PERSONNE_ACTIVITE, formats.SAVOIR_FAIRE, formats.DIPLOMES)
MAX_DEACTIVATION = 0.05  # share of the active persons, activities or structures one import may deactivate
DEACTIVATION_MIN = 10  # fewer deactivations than this are never refused (small directories)
CLOCK_SKEW = timedelta(hours=1)  # a file dated at most this far in the future is accepted
PARIS = ZoneInfo("Europe/Paris")
TABLES = {"structure": structure, "activity": activity, "skill": skill, "diploma": diploma}
GUARDED = {"person": person, "activity": activity, "structure": structure}
FIRST_LOAD_MIN_SIZE = 50 << 20  # a smaller first import runs in one process (the helper costs ~0.3 s)
PLURALS = {"structure": "structures", "activity": "activities", "skill": "savoir-faire", "diploma": "diplomas"}


@dataclass
class ImportSummary:
    """What one import did, per entity, plus warnings."""

    run_id: int | None = None
    file_ts: str = ""
    counts: dict[str, Counts] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    mailboxes: dict | None = None  # summary of a national MSSanté file import

    def as_dict(self) -> dict:
        out = {
            "run": self.run_id,
            "file_ts": self.file_ts,
            "entities": {k: v.as_dict() for k, v in self.counts.items()},
            "warnings": self.warnings,
        }
        if self.mailboxes is not None:
            out["mailboxes"] = self.mailboxes
        return out


def import_paths(
    store: Store, paths: list[Path], *, force: bool = False, progress: Reporter | None = None,
    max_deactivation: float = MAX_DEACTIVATION, settings: Settings | None = None,
) -> list[ImportSummary]:
    """Import national files: PS_LibreAcces (zip or txts) and MSSanté extractions, in ONE transaction."""
    from annuaire.mailboxes.national import Mirror, analyze_after

    progress = steps(progress)
    sources = find_sources(paths)
    for source in sources:
        check_not_future(source, force)
    referential = [s for s in sources if s.kind in REFERENTIAL_KINDS]
    with store.read() as conn:
        first = _empty(conn)
    largest = max((s.size for s in referential if s.kind == formats.PERSONNE_ACTIVITE), default=0)
    progress.plan(pace.whole(sources, first, built=first and largest >= FIRST_LOAD_MIN_SIZE))
    # The MSSanté files are read (and checked) first: a malformed one stops everything before any write.
    mirrors = [Mirror.read(store, path, force=force, progress=progress, settings=settings)
               for path in dict.fromkeys(s.path for s in sources if s.kind == formats.MSSANTE)]

    def apply_mirrors(conn: Connection) -> list[ImportSummary]:
        return [ImportSummary(run_id=m["run"], file_ts=m["file_ts"], mailboxes=m)
                for m in (mirror.apply(conn) for mirror in mirrors)]

    if referential:
        summaries = import_referential(store, referential, force=force, progress=progress,
                                       max_deactivation=max_deactivation, then=apply_mirrors)
    else:
        with store.write() as conn:
            summaries = apply_mirrors(conn)
        progress.done()
    analyze_after(store, [s.mailboxes for s in summaries if s.mailboxes])
    return summaries


def check_not_future(source: Source, force: bool = False) -> None:
    """A national file is dated by its name (Paris time); one dated in the future is a wrong name or a
    wrong clock, and would make every normal file after it "older than the last imported"."""
    try:
        dated = datetime.strptime(source.ts, formats.TIMESTAMP_FORMAT).replace(tzinfo=PARIS)
    except ValueError:
        raise ImportFileError(source.label, f"the date {source.ts} of the file name is not a valid "
                                            "YYYYMMDDhhmm date") from None
    now = datetime.now(PARIS)
    if dated > now + CLOCK_SKEW and not force:
        raise ImportFileError(
            source.label,
            f"dated {dated:%Y-%m-%d %H:%M} (Paris time), in the future (now {now:%Y-%m-%d %H:%M}): refused, as it "
            "would make every later file look older; check the file's name or this machine's clock "
            "(--force imports it anyway)")


def import_referential(
    store: Store, sources: list[Source], *, force: bool = False, progress: Reporter | None = None,
    max_deactivation: float = MAX_DEACTIVATION,
    then: Callable[[Connection], list[ImportSummary]] | None = None,
) -> list[ImportSummary]:
    """The referential's summary, then those of `then` (run in the same transaction, before its commit)."""
    progress = steps(progress)
    kinds = [s.kind for s in sources]
    for kind in set(kinds):
        if kinds.count(kind) > 1:
            raise ImportFileError(kind, "given twice: import one extraction at a time")
    missing = [k for k in REFERENTIAL_KINDS if k not in kinds]
    if missing and not force:
        raise ImportFileError(
            sources[0].label,
            f"a day's referential has three files; missing: {', '.join(missing)}. Give the whole "
            "PS_LibreAcces extraction (--force imports a part of it)")
    stamps = sorted({s.ts for s in sources})
    if len(stamps) > 1 and not force:
        raise ImportFileError(sources[0].label, f"files of different extractions ({', '.join(stamps)}): give the "
                                                "three files of one day (--force mixes them)")
    summary = ImportSummary(file_ts=max(s.ts for s in sources))
    removed = remove_stale(store.url, store.database_file)
    if removed:
        summary.warnings.append(f"removed the scratch data of an import that no longer runs: {', '.join(removed)}")
    now = utc_now()
    with store.read() as conn:
        first = _empty(conn)
        first_load = _first_load(store, conn, {s.kind: s for s in sources}, now) if first else None
    guard = None if force or first else max_deactivation
    try:
        return _import(store, sources, first, first_load, force, now, summary, progress, guard, then)
    finally:
        if first_load is not None:  # (its scratch tables are dropped once the transaction ended)
            first_load.discard()


def _empty(conn: Connection) -> bool:
    """Whether no referential was imported yet (a first import)."""
    return conn.execute(select(person.c.id).limit(1)).first() is None


def _active_counts(conn: Connection) -> dict[str, int]:
    return {name: int(conn.execute(select(func.count()).select_from(table).where(table.c.active)).scalar_one())
            for name, table in GUARDED.items()}


def _check_deactivations(summary: ImportSummary, before: dict[str, int], ratio: float, label: str) -> None:
    """Refuse (roll back) an import deactivating more than `ratio` of the active records of a kind."""
    excess = []
    for name, active in before.items():
        counts = summary.counts.get(name)
        gone = counts.deactivated if counts is not None else 0
        if gone > DEACTIVATION_MIN and gone > ratio * active:
            excess.append(f"{gone:,} of the {active:,} active {name}s ({gone / active:.0%})")
    if excess:
        raise MassDeactivation(
            f"{label} would deactivate {'; '.join(excess)}, more than {ratio:.0%}: is the file truncated or "
            "incomplete? Nothing was changed. If the file is right, import it with --force "
            f"(annuaire import --force …); the limit is ANNUAIRE_REFERENTIAL_MAX_DEACTIVATION ({ratio:g})")


def _import(store: Store, sources: list[Source], first: bool, first_load: FirstLoad | None, force: bool,
            now: str, summary: ImportSummary, progress: Steps, guard: float | None,
            then: Callable[[Connection], list[ImportSummary]] | None) -> list[ImportSummary]:
    ts = summary.file_ts
    with store.write(bulk=first) as conn:  # a first import writes gigabytes
        if first_load is not None and first_load.scratch.postgresql:  # (its scratch tables are alive while this runs)
            conn.exec_driver_sql(f"SET LOCAL application_name = '{APPLICATION}{first_load.scratch.token}'")
        before = _active_counts(conn) if guard is not None else {}
        last = conn.execute(
            select(func.max(run.c.file_ts)).where(run.c.kind == "referential", run.c.status == "ok")
        ).scalar()
        if last and ts < last and not force:
            raise Conflict(
                f"{sources[0].label} is dated {ts}, older than the last imported referential ({last}); "
                "use --force to import it anyway"
            )
        nomenclatures.ensure_loaded(conn)
        key = conn.execute(
            insert(run).values(
                kind="referential", source=", ".join(s.label for s in sources), file_ts=ts,
                started_at=now, status="running",
            )
        ).inserted_primary_key
        assert key is not None  # an INSERT of one row
        run_id = key[0]
        summary.run_id = run_id
        loader = _Loader(conn, run_id, now, summary, progress, first)
        by_kind = {s.kind: s for s in sources}
        loader.start_ahead(by_kind)
        # Millions of long-lived keys, fingerprints and records, and no cycles: the collector's
        # passes over them would find nothing.
        with gc_paused(), closing(loader):
            if first_load is not None:  # (a first import with Personne_activite)
                loader.write_persons(by_kind[formats.PERSONNE_ACTIVITE])
                loader.copy_built(first_load, by_kind)
            else:
                if formats.PERSONNE_ACTIVITE in by_kind:
                    loader.load_activities(by_kind[formats.PERSONNE_ACTIVITE])
                for kind in CHILD_KINDS:
                    if kind in by_kind:
                        loader.load_children(by_kind[kind])
            loader.touch_parents()
            loader.forget_prints()
        summary.warnings.extend(loader.code_warnings())
        if guard is not None:
            _check_deactivations(summary, before, guard, sources[0].path.name)
        conn.execute(
            update(run)
            .where(run.c.id == run_id)
            .values(status="ok", finished_at=utc_now(), report=json.dumps(summary.as_dict(), ensure_ascii=False))
        )
        others = then(conn) if then is not None else []
    progress.done()
    # Statistics matter once a sizeable part of a table changed (first load above all: its
    # tables were loaded empty, their rows written frozen, nothing to vacuum).
    store.analyze([
        name for name, c in summary.counts.items()
        if c.created + c.updated + c.deactivated > max(1000, (c.unchanged + c.created) // 10)
    ], vacuum=not first)
    return [summary, *others]


def _first_load(store: Store, conn: Connection, by_kind: dict[str, Source], now: str) -> FirstLoad | None:
    """The helper process of a first national import (small files: one process)."""
    source = by_kind.get(formats.PERSONNE_ACTIVITE)
    if source is None or source.size < FIRST_LOAD_MIN_SIZE:
        return None
    token = f"{os.getpid()}_{secrets.token_hex(4)}"
    if store.database_file is None:  # a server: scratch tables in it
        return FirstLoad(by_kind, Scratch(store.url, token, now, postgresql_schema(conn), postgresql=True))
    database = Path(store.database_file)
    location = str(database.with_name(f".{database.name}.import-{token}"))
    return FirstLoad(by_kind, Scratch(location, token, now, sqlite_schema(conn)))


class _Loader:
    """The state of one referential import inside its transaction."""

    def __init__(self, conn: Connection, run_id: int, now: str, summary: ImportSummary, progress: Steps,
                 first: bool = False) -> None:
        self.conn = conn
        self.first = first
        self.run_id = run_id
        self.now = now
        self.summary = summary
        self.progress = progress
        self.person_ids: dict[str, int] | None = None  # every active person, when all lines were read
        self.active_persons: Container[bytes] | None = None  # national ids of the active persons (bytes)
        self.printed: set[str] = set()  # kinds whose fingerprints this import stored
        self.persons_changed: set[str] = set()
        self.children_changed: set[str] = set()
        # The fingerprints stored by the last import, read before this one replaces them.
        self.stored = {kind: prints.load_packed(conn, kind) for kind in REFERENTIAL_KINDS}
        self.before: set[bytes] | None = None
        self.ahead: Ahead | None = None
        self.persons_gone: set[str] = set()  # deactivated by this import
        self.code_checks: list[CodeCheck] = []

    def _sync(self, table, entity: str, key_column: str, columns, track: bool = False, derive=None,
              only=None) -> TableSync:
        return TableSync(
            self.conn, table, entity, key_column, tuple(columns), self.run_id, self.now,
            track_changes=track, derive=derive, only=only,
        )

    def _codes(self, index: dict[str, int]) -> CodeCheck:
        check = code_check(index)
        self.code_checks.append(check)
        return check

    def start_ahead(self, by_kind: dict[str, Source]) -> None:
        """Start comparing the large savoir-faire and diploma files in a helper process."""
        before = self.stored[formats.PERSONNE_ACTIVITE]
        jobs = [
            (by_kind[kind], self.stored[kind]) for kind in CHILD_KINDS
            if kind in by_kind and self.stored[kind] is not None and by_kind[kind].size >= AHEAD_MIN_SIZE
        ]
        if before is not None and jobs:
            self.ahead = Ahead(jobs, before)  # type: ignore[arg-type]  # the jobs kept have a stored print (not None)

    def _read(self, source: Source) -> _Reading:
        """The lines to diff: those of the persons whose lines changed since the last import
        (with the fingerprints stored by it), else every line."""
        name = source.member or source.path.name
        lines = Lines(source)
        lines.read_header()
        lines.progress = self.progress.advance
        packed = self.stored[source.kind]
        before = self.stored[formats.PERSONNE_ACTIVITE]
        if packed is not None:
            self.progress.start(f"Comparing {name} with the last import", source.size,
                                pace.referential_read(source, first=False), unit="bytes")
            if source.kind == formats.PERSONNE_ACTIVITE:
                compared = compare(lines, packed.unpack())
            elif self.ahead is not None and source.kind in self.ahead.kinds:
                compared = self.ahead.result(source.kind)
                self.progress.advance(source.size)
            elif before is not None:
                compared = compare_child(lines, packed, self._before())
            else:  # the persons whose lines were orphans then are not known: read every line
                compared = None
            if compared is not None:
                return _Reading(lines, compared.groups, compared.selected, compared.gone, compared.packed)
        groups = Groups(None)
        self.progress.start(f"Reading {name}", source.size, pace.referential_read(source, self.first), unit="bytes")
        return _Reading(lines, groups, selected_lines(lines, groups), None)

    def _before(self) -> set[bytes]:
        """The persons of the last imported Personne_activite."""
        if self.before is None:
            self.before = self.stored[formats.PERSONNE_ACTIVITE].ids_set()  # type: ignore[union-attr]  # called only when that print exists
        return self.before

    def load_activities(self, source: Source) -> None:
        """Persons, structures and activities."""
        reading = self._read(source)
        index = reading.lines.column_index()
        i_idnat, i_tech = index[records.ID_NAT], index[records.TECH_ID]
        scope = reading.scope(i_idnat)
        persons = self._sync(
            person, "person", "id_nat", [*records.PERSON, *records.PERSON_KEYS], track=True,
            derive=records.person_keys,
            only=None if scope is None else ("id_nat", scope),
        )
        scoped_ids = None if scope is None else [v[0] for v in persons.existing.values()]
        activities = self._sync(
            activity, "activity", "key", ["person_id", "structure_id", *records.ACTIVITY],
            only=None if scoped_ids is None else ("person_id", scoped_ids),
        )
        places = None
        if scoped_ids is not None:
            # The structures that may change: those of the lines read, and those where the
            # persons read worked until now (they may be left without anyone).
            # (They are in the keys of their activities: no need to ask the database.)
            places = set(reading.column(i_tech))
            places.update(structure_of(key) for key, (_, _, active) in activities.existing.items() if active)
            places.discard("")
        structures = self._sync(
            structure, "structure", "tech_id", [*records.STRUCTURE, *records.STRUCTURE_KEYS],
            derive=records.structure_keys, only=None if places is None else ("tech_id", places),
        )
        # The active structures left alone stay as they are (counted unchanged).
        outside = 0
        if places is not None:
            active = self.conn.execute(select(func.count()).select_from(structure).where(structure.c.active)).scalar_one()
            outside = active - sum(v[2] for v in structures.existing.values())
        pick_person = records.picker(index, records.PERSON)
        pick_structure = records.picker(index, records.STRUCTURE)
        pick_activity = records.picker(index, records.ACTIVITY)
        check_codes = self._codes(index)
        person_ids: dict[str, int] = {}
        structure_ids: dict[str, int] = {}
        activity_keys: set[str] = set()
        for line_no, fields in reading.rows():
            id_nat = fields[i_idnat]
            if not id_nat:
                raise _no_id_nat(source, line_no)
            check_codes(fields, line_no)
            pid = person_ids.get(id_nat)
            if pid is None:
                values = pick_person(fields)
                pid = persons.offer(id_nat, values, digest(values))
                person_ids[id_nat] = pid
            tech = fields[i_tech]
            sid = None
            if tech:
                sid = structure_ids.get(tech)
                if sid is None:
                    values = pick_structure(fields)
                    sid = structures.offer(tech, values, digest(values))
                    structure_ids[tech] = sid
            values = pick_activity(fields)
            activities.offer(activity_key(id_nat, tech, activity_keys), (pid, sid, *values), digest(values))
        # In a refresh, the persons of the file (the active ones) tell the orphans among the
        # children not read again.
        self._save_prints(reading, keep=scope is not None)
        self.persons_gone = {key for key, _ in persons.not_offered()}
        self.summary.counts["person"] = persons.finish()
        self.persons_changed = set(persons.changed)
        self.summary.counts["structure"] = structures.counts  # finished below, once activities are
        self.summary.counts["activity"] = activities.finish()
        # A structure is active while an active activity takes place there.
        left = {id_: key for key, id_ in structures.not_offered()}
        structures.keep(left[row[0]] for row in select_in(
            self.conn, "SELECT DISTINCT structure_id FROM activity WHERE active AND {in}", "structure_id", left))
        structures.finish()
        skipped, _, lines = reading.groups.skipped()  # persons not read: unchanged, like their lines
        persons.counts.unchanged += len(skipped)
        activities.counts.unchanged += sum(lines)
        structures.counts.unchanged += outside
        self.person_ids = person_ids if scope is None else None
        self.active_persons = reading.groups.prints if scope is not None else None

    def write_persons(self, source: Source) -> None:
        """A first import's persons, created 1, 2, … in order of first appearance, as the
        helper numbers them in its rows (`firstload`: it builds the other records)."""
        reading = self._read(source)
        index = reading.lines.column_index()
        i_idnat = index[records.ID_NAT]
        pick = records.picker(index, records.PERSON)
        check_codes = self._codes(index)  # (here: the helper is the busier process)
        persons = self._sync(person, "person", "id_nat", [*records.PERSON, *records.PERSON_KEYS],
                             derive=records.person_keys)
        if not persons.bulk:
            raise Conflict("the person records were written by another import meanwhile; run this one again")
        seen: set[str] = set()
        for line_no, fields in reading.rows():
            id_nat = fields[i_idnat]
            check_codes(fields, line_no)
            if id_nat not in seen:
                if not id_nat:
                    raise _no_id_nat(source, line_no)
                seen.add(id_nat)
                values = pick(fields)
                persons.offer(id_nat, values, digest(values))
        self._save_prints(reading)
        self.summary.counts["person"] = persons.finish()

    def load_children(self, source: Source) -> None:
        """SavoirFaire or Dipl_AutExerc: lines attached to a person."""
        entity = CHILD_KINDS[source.kind]
        reading = self._read(source)
        index = reading.lines.column_index()
        i_idnat = index[records.ID_NAT]
        scope = reading.scope(i_idnat)
        if scope is not None:  # the lines of persons deactivated by this import are orphans now
            scope |= self.persons_gone
        active = self.active_persons
        if scope is not None and active is None:
            active = self.active_persons = dict.fromkeys(
                row[0].encode() for row in self.conn.execute(select(person.c.id_nat).where(person.c.active))
            )
        if scope is None:
            person_ids = self.person_ids
            if person_ids is None:
                person_ids = dict(self.conn.execute(select(person.c.id_nat, person.c.id).where(person.c.active)).all())
            only = None
        else:
            scoped: dict[str, int] = {
                r[0]: r[1] for r in select_in(self.conn, "SELECT id_nat, id FROM person WHERE {in}", "id_nat", scope)
            }
            assert active is not None  # set just above when scoped
            person_ids = {k: v for k, v in scoped.items() if k.encode() in active}
            only = ("person_id", list(scoped.values()))
        sync = self._sync(TABLES[entity], entity, "key", ["person_id", *CHILDREN[entity]], track=True, only=only)
        orphans = Orphans()
        for id_nat, key, values in child_lines(reading.rows(), index, entity, person_ids, self._codes(index), orphans):
            sync.offer(key, (person_ids[id_nat], *values), digest(values))
        self._save_prints(reading)
        self.summary.counts[entity] = sync.finish()
        skipped, firsts, lines = reading.groups.skipped()  # persons not read: unchanged lines, or orphans
        sync.counts.unchanged += sum(lines)
        if skipped:
            # active is None only when every person is read (no scope): none is skipped then
            for i in compress(range(len(skipped)), map(not_, map(active.__contains__, skipped))):  # type: ignore[operator]  # see the comment above
                sync.counts.unchanged -= lines[i]
                orphans.add(lines[i], firsts[i])
        self.children_changed.update(key.split("|", 1)[0] for key in sync.changed)
        self._warn_orphans(source, orphans)

    def copy_built(self, first_load: FirstLoad, by_kind: dict[str, Source]) -> None:
        """A first import's structures, activities, savoir-faire and diplomas, from the
        helper's scratch tables (their rows carry the ids of their persons and structures),
        each copied while the helper builds the next."""
        # (the summary's order: a refresh's, whatever the helper's)
        entities = ["structure", "activity", *(entity for kind, entity in CHILD_KINDS.items() if kind in by_kind)]
        for entity in entities:
            self.summary.counts[entity] = Counts()
        self.progress.start(f"Writing the {', '.join(PLURALS[e] for e in entities)}", len(entities),
                            pace.referential_built(by_kind.values()), unit="kinds of records")
        for entity in first_load.tables():
            self._copy(first_load.scratch, entity)
            self.progress.advance(1)
        for kind, child in first_load.built.children.items():
            self.code_checks.append(child.checks)
            self._warn_orphans(by_kind[kind], child.orphans)
            self._store_prints(kind, child.prints)

    def _copy(self, scratch: Scratch, entity: str) -> None:
        """Create the records of `entity` from its scratch table."""
        table = TABLES[entity]
        self.summary.counts[entity] = Counts(created=scratch.move_into(self.conn, table))
        journal_creations(self.conn, table, entity, COLUMNS[entity][1], self.run_id, self.now)

    def _warn_orphans(self, source: Source, orphans: Orphans) -> None:
        if orphans.count:
            self.summary.warnings.append(
                f"{source.label}: {orphans.count} line(s) of persons absent from Personne_activite were skipped "
                f"(first at line {orphans.first})"
            )

    def _save_prints(self, reading: _Reading, keep: bool = False) -> None:
        """Store the fingerprints of a file once all its lines were read (then free them)."""
        lines = reading.lines
        self._store_prints(lines.source.kind, reading.packed or prints.kept(lines, reading.groups.prints))
        if not keep:
            reading.groups.prints = {}

    def _store_prints(self, kind: str, packed: prints.Packed | None) -> None:
        """Replace the fingerprints of `kind`; None (`prints.kept`: a file not read as UTF-8)
        forgets them."""
        if packed is None:
            prints.drop(self.conn, kind)
        else:
            prints.save(self.conn, kind, packed)
        self.printed.add(kind)

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.close()

    def forget_prints(self) -> None:
        """Persons created or deactivated by a Personne_activite imported without the other
        files were not compared in those: their next import compares every line."""
        if formats.PERSONNE_ACTIVITE in self.printed:
            for kind in (formats.SAVOIR_FAIRE, formats.DIPLOMES):
                if kind not in self.printed:
                    prints.drop(self.conn, kind)

    def touch_parents(self) -> None:
        """A person whose savoir-faire or diplomas changed gets a new version too."""
        rows = [{"k": k} for k in self.children_changed - self.persons_changed]
        if rows:
            self.conn.execute(
                update(person)
                .where(person.c.id_nat == bindparam("k"))
                .values(version=person.c.version + 1, last_updated=self.now),
                rows,
            )

    def code_warnings(self) -> list[str]:
        unknown: dict[tuple[str, str], list[int]] = {}  # (column, code) -> [count, first line]
        for check in self.code_checks:
            check.add_unknown(unknown)
        return [
            f"unknown code {code!r} in column '{column}' ({count} line(s), first at line {first})"
            for (column, code), (count, first) in sorted(unknown.items())
        ]


def _no_id_nat(source: Source, line_no: int) -> ImportFileError:
    return ImportFileError(source.label, "empty 'Identification nationale PP'", line_no)


@dataclass
class _Reading:
    """What `_Loader._read` found in one file."""

    lines: Lines
    groups: Groups
    selected: Iterable[tuple[int, str]]  # (line number, text) to diff; a list when scoped
    gone: set[bytes] | None  # persons of the last imported file not in this one; None: every line read
    packed: prints.Packed | None = None  # the fingerprints to store, when packed already (else groups.prints)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of the lines to diff, split one at a time."""
        fields = self.lines.fields
        for line_no, text in self.selected:
            yield line_no, fields(text, line_no)

    def column(self, i: int) -> list[str]:
        """One field of every line to diff (scoped reading only)."""
        try:
            return [text.split("|", i + 1)[i] for _, text in self.selected]
        except IndexError:
            for line_no, text in self.selected:
                self.lines.fields(text, line_no)  # raises, naming the short line
            raise

    def scope(self, i_idnat: int) -> set[str] | None:
        """The persons whose records may change (None: everyone): those read again, and
        those no longer in the file."""
        if self.gone is None:
            return None
        ids = set(self.column(i_idnat))
        ids.update(gone.decode() for gone in self.gone)
        return ids


def summary_json(summaries: list[ImportSummary]) -> bytes:
    return orjson.dumps([s.as_dict() for s in summaries])
