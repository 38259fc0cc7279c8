"""Daily import of the national referential (PS_LibreAcces): the file REPLACES the state.

One import = one write transaction: persons, structures and activities from
`Personne_activite`, savoir-faire from `SavoirFaire`, diplomas from
`Dipl_AutExerc`, each through the diff engine (created / updated /
deactivated / unchanged, journal). Any error leaves the store as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import Connection, bindparam, func, insert, select, update

from annuaire import formats
from annuaire.errors import Conflict, ImportFileError
from annuaire.progress import Reporter, Silent
from annuaire.referential import nomenclatures, parse, records
from annuaire.referential.reader import Source, find_sources
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.diff import Counts, TableSync
from annuaire.store.schema import activity, diploma, person, run, skill, structure

REFERENTIAL_KINDS = (formats.PERSONNE_ACTIVITE, formats.SAVOIR_FAIRE, formats.DIPLOMES)


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
    store: Store, paths: list[Path], *, force: bool = False, progress: Reporter | None = None
) -> list[ImportSummary]:
    """Import national files: PS_LibreAcces (zip or txts) and MSSanté extractions."""
    progress = progress or Silent()
    sources = find_sources(paths)
    referential = [s for s in sources if s.kind in REFERENTIAL_KINDS]
    summaries = []
    if referential:
        summaries.append(import_referential(store, referential, force=force, progress=progress))
    for path in dict.fromkeys(s.path for s in sources if s.kind == formats.MSSANTE):
        from annuaire.mailboxes.national import import_mssante_file

        result = import_mssante_file(store, path, force=force, progress=progress)
        summaries.append(ImportSummary(run_id=result.get("run"), file_ts=result.get("file_ts", ""), mailboxes=result))
    return summaries


def import_referential(
    store: Store, sources: list[Source], *, force: bool = False, progress: Reporter | None = None
) -> ImportSummary:
    progress = progress or Silent()
    kinds = [s.kind for s in sources]
    for kind in set(kinds):
        if kinds.count(kind) > 1:
            raise ImportFileError(kind, "given twice: import one extraction at a time")
    ts = max(s.ts for s in sources)
    summary = ImportSummary(file_ts=ts)
    now = utc_now()
    with store.write() as conn:
        last = conn.execute(
            select(func.max(run.c.file_ts)).where(run.c.kind == "referential", run.c.status == "ok")
        ).scalar()
        if last and ts < last and not force:
            raise Conflict(
                f"{sources[0].label} is dated {ts}, older than the last imported referential ({last}); "
                "use --force to import it anyway"
            )
        nomenclatures.ensure_loaded(conn)
        run_id = conn.execute(
            insert(run).values(
                kind="referential", source=", ".join(s.label for s in sources), file_ts=ts,
                started_at=now, status="running",
            )
        ).inserted_primary_key[0]
        summary.run_id = run_id
        loader = _Loader(conn, run_id, now, summary, progress)
        by_kind = {s.kind: s for s in sources}
        if formats.PERSONNE_ACTIVITE in by_kind:
            loader.load_activities(by_kind[formats.PERSONNE_ACTIVITE])
        if formats.SAVOIR_FAIRE in by_kind:
            loader.load_children(by_kind[formats.SAVOIR_FAIRE], skill, "skill", records.SKILL)
        if formats.DIPLOMES in by_kind:
            loader.load_children(by_kind[formats.DIPLOMES], diploma, "diploma", records.DIPLOMA)
        loader.touch_parents()
        summary.warnings.extend(loader.code_warnings())
        conn.execute(
            update(run)
            .where(run.c.id == run_id)
            .values(status="ok", finished_at=utc_now(), report=json.dumps(summary.as_dict(), ensure_ascii=False))
        )
    progress.done()
    # Statistics matter once a sizeable part of a table changed (first load above all).
    store.analyze([
        name for name, c in summary.counts.items()
        if c.created + c.updated + c.deactivated > max(1000, (c.unchanged + c.created) // 10)
    ])
    return summary


class _Loader:
    """The state of one referential import inside its transaction."""

    def __init__(self, conn: Connection, run_id: int, now: str, summary: ImportSummary, progress: Reporter) -> None:
        self.conn = conn
        self.run_id = run_id
        self.now = now
        self.summary = summary
        self.progress = progress
        self.person_ids: dict[str, int] | None = None
        self.persons_changed: set[str] = set()
        self.children_changed: set[str] = set()
        self.known = {table: frozenset(codes) for table, codes in nomenclatures.tables().items()}
        self.unknown: parse.Unknown = {}

    def _sync(self, table, entity: str, key_column: str, columns, track: bool = False, derive=None) -> TableSync:
        return TableSync(
            self.conn, table, entity, key_column, tuple(columns), self.run_id, self.now,
            track_changes=track, derive=derive,
        )

    def load_activities(self, source: Source) -> None:
        self.progress.start(f"Reading {source.label}", source.size)
        persons = self._sync(
            person, "person", "id_nat", [*records.PERSON, *records.PERSON_KEYS], track=True, derive=records.person_keys
        )
        structures = self._sync(
            structure, "structure", "tech_id", [*records.STRUCTURE, *records.STRUCTURE_KEYS],
            derive=records.structure_keys,
        )
        activities = self._sync(activity, "activity", "key", ["person_id", "structure_id", *records.ACTIVITY])
        person_ids: dict[str, int] = {}
        structure_ids: dict[str, int] = {}
        for chunk in parse.activity_chunks(source, self.known):
            for id_nat, values, dig in chunk.persons:
                person_ids[id_nat] = persons.offer(id_nat, values, dig)
            for tech, values, dig in chunk.structures:
                structure_ids[tech] = structures.offer(tech, values, dig)
            for key, id_nat, tech, values, dig in chunk.activities:
                activities.offer(key, (person_ids[id_nat], structure_ids.get(tech), *values), dig)
            self.progress.advance(chunk.read)
            if chunk.unknown:
                parse.merge_unknown(self.unknown, chunk.unknown)
        self.summary.counts["person"] = persons.finish()
        self.persons_changed = set(persons.changed)
        self.summary.counts["structure"] = structures.finish()
        self.summary.counts["activity"] = activities.finish()
        self.person_ids = person_ids

    def load_children(self, source: Source, table, entity: str, mapping: dict[str, str]) -> None:
        """SavoirFaire or Dipl_AutExerc: lines attached to a person."""
        self.progress.start(f"Reading {source.label}", source.size)
        person_ids = self.person_ids
        if person_ids is None:
            person_ids = dict(self.conn.execute(select(person.c.id_nat, person.c.id).where(person.c.active)).all())
        sync = self._sync(table, entity, "key", ["person_id", *mapping], track=True)
        orphans = 0
        first_orphan = 0
        for chunk in parse.child_chunks(source, self.known, mapping):
            for key, id_nat, line_no, values, dig in chunk.records:
                pid = person_ids.get(id_nat)
                if pid is None:
                    orphans += 1
                    first_orphan = first_orphan or line_no
                    continue
                sync.offer(key, (pid, *values), dig)
            self.progress.advance(chunk.read)
            if chunk.unknown:
                parse.merge_unknown(self.unknown, chunk.unknown)
        self.summary.counts[entity] = sync.finish()
        self.children_changed.update(key.split("|", 1)[0] for key in sync.changed)
        if orphans:
            self.summary.warnings.append(
                f"{source.label}: {orphans} line(s) of persons absent from Personne_activite were skipped "
                f"(first at line {first_orphan})"
            )

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
        return [
            f"unknown code {code!r} in column '{column}' ({count} line(s), first at line {first})"
            for (column, code), (count, first) in sorted(self.unknown.items())
        ]


def summary_json(summaries: list[ImportSummary]) -> bytes:
    return orjson.dumps([s.as_dict() for s in summaries])
