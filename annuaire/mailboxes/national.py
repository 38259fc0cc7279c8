"""The national mirror: importing an `Extraction_Correspondance_MSSante` file.

The national file lists every published box of every domain. Each domain of
the file goes through the SAME diff as an operator publication (source
'national'), so journal rows and tombstones look the same whichever way a box
arrived. Domains owned by a local operator are left to that operator (their
national lines are ignored, with a warning). Domains without an operator that
are absent from the file lose all their boxes (tombstones).

The file is authoritative for what it holds: referential mismatches (a holder
our referential does not know yet) are warnings, not rejections; lines
breaking a syntax rule are skipped with a warning. A malformed FILE (bad
header, wrong field count, truncated zip, bad encoding) fails the whole
import with ImportFileError and changes nothing: the file is read completely
(`Mirror.read`) before the write transaction starts; `Mirror.apply` then runs
inside it — its own, or the referential import's when both files are given
to one `annuaire import` (one transaction for the day).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from annuaire import formats
from annuaire.config import Settings
from annuaire.errors import Conflict, ImportFileError
from annuaire.gcpause import gc_paused
from annuaire.mailboxes import bulk_reads
from annuaire.mailboxes.entries import Entry, ListFormatError, TextColumns
from annuaire.mailboxes.model import SOURCE_NATIONAL
from annuaire.mailboxes.publication import DomainPlan, plan_domain, write_plans
from annuaire.mailboxes.rules import Finding, Line, Validator, finding
from annuaire.nationalfiles import pace
from annuaire.nationalfiles.lines import Lines
from annuaire.nationalfiles.sources import Source, find_sources
from annuaire.progress import Reporter, Silent, Steps, steps
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.dialect import insert_ignore, lock_rows
from annuaire.store.schema import domain as domain_table
from annuaire.store.schema import run

MAX_WARNINGS = 1000  # warning lines kept in the summary (counts per code are complete)


def read_entries(source: Source, progress: Steps) -> tuple[list[Entry], list[Finding]]:
    """Every line of the file as an entry; addresses lowercased, later copies of one address dropped."""
    lines = Lines(source, progress.advance)
    progress.start(f"Reading {source.member or source.path.name}", source.size, pace.mssante_read(source), unit="bytes")
    entries: list[Entry] = []
    warnings: list[Finding] = []
    seen: dict[str, int] = {}
    columns: TextColumns | None = None
    for line_no, fields in lines:
        if columns is None:
            try:
                columns = TextColumns(list(lines.header), strict=False)
            except ListFormatError as exc:
                raise ImportFileError(source.label, exc.message, 1) from exc
        entry = columns.entry(len(entries), line_no, fields)
        if isinstance(entry.address, str):
            address = entry.address.strip().lower()
            first = seen.get(address)
            if first is not None:
                warnings.append(finding("DUPLICATE_LINE", entry, address, first=first))
                continue
            seen[address] = line_no
            entry.address = address
        entries.append(entry)
    return entries, warnings


def _last_ts(conn: Connection) -> str | None:
    return conn.execute(
        select(func.max(run.c.file_ts)).where(run.c.kind == "mssante", run.c.status == "ok")
    ).scalar()


def _check_date(conn: Connection, source: Source, force: bool) -> None:
    last = _last_ts(conn)
    if last and source.ts < last and not force:
        raise Conflict(
            f"{source.label} is dated {source.ts}, older than the last imported MSSanté file ({last}); "
            "use --force to import it anyway"
        )


def _lock_national_domains(conn: Connection, names: set[str], now: str) -> dict[str, tuple[int, int | None]]:
    """Create missing domain rows, then (version, operator) of every domain, the operator-less ones locked."""
    if names:
        conn.execute(insert_ignore(conn, domain_table, ["name"]),
                     [{"name": n, "version": 0, "created_at": now} for n in sorted(names)])
    query = select(domain_table.c.name, domain_table.c.version, domain_table.c.operator_id).order_by(domain_table.c.name)
    lock_rows(conn, select(domain_table.c.name).where(domain_table.c.operator_id.is_(None)).order_by(domain_table.c.name))
    return {row[0]: (int(row[1]), row[2]) for row in conn.execute(query)}


def _describe(f: Finding) -> str:
    where = f"line {f.line}" if f.line is not None else f"item {f.index}"
    return f"{where}: {f.address or '?'}: {f.message_en} [{f.code}]"


def import_mssante_file(
    store: Store,
    path: Path,
    *,
    force: bool = False,
    progress: Reporter | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Mirror a national MSSanté file (zip or txt) into the store; returns the summary.

    `force`: import a file older than the last one, and accept deleting more
    than the mass-deletion share of the national boxes.
    """
    mirror = Mirror.read(store, path, force=force, progress=progress, settings=settings)
    with store.write() as conn:
        summary = mirror.apply(conn)
    analyze_after(store, [summary])
    (progress or Silent()).done()
    return summary


def analyze_after(store: Store, summaries: list[dict[str, Any]]) -> None:
    """The planner's statistics of `mailbox` once a sizeable part of it changed (a first national
    file above all). Without them PostgreSQL guessed 150 PER boxes of 454,560 and read every box
    for each range of holders the FHIR renderer asked about (9 s a query)."""
    changed = sum(s.get("created", 0) + s.get("updated", 0) + s.get("deleted", 0) for s in summaries)
    kept = sum(s.get("unchanged", 0) + s.get("created", 0) for s in summaries)
    if changed > max(1000, kept // 10):
        store.analyze(["mailbox"])


@dataclass
class Mirror:
    """A national MSSanté file read and checked, ready to be applied inside a write transaction
    (its own, or a referential import's: `annuaire import` of a day's files is one transaction)."""

    source: Source
    entries: list[Entry]
    duplicates: list[Finding]
    force: bool
    progress: Steps
    settings: Settings

    @classmethod
    def read(cls, store: Store, path: Path, *, force: bool = False, progress: Reporter | None = None,
             settings: Settings | None = None) -> Mirror:
        progress = steps(progress)
        path = Path(path)
        sources = find_sources([path])
        if len(sources) != 1 or sources[0].kind != formats.MSSANTE:
            raise ImportFileError(path.name, f"expected exactly one {formats.MSSANTE}_<YYYYMMDDhhmm>.txt file")
        source = sources[0]
        with store.read() as conn:
            _check_date(conn, source, force)
        with gc_paused():  # ~10 small objects a line and no cycles: the collector would find nothing
            entries, duplicates = read_entries(source, progress)
        return cls(source, entries, duplicates, force, progress, settings or Settings.from_env())

    def apply(self, conn: Connection) -> dict[str, Any]:
        """Validate against the referential as `conn` sees it, diff every domain, write; the summary."""
        with gc_paused():
            return self._apply(conn)

    def _apply(self, conn: Connection) -> dict[str, Any]:
        source, settings, progress, force = self.source, self.settings, self.progress, self.force
        _check_date(conn, source, force)
        validation = Validator(settings, strict=False, good_practice=False).validate(
            conn, self.entries, None, duplicates=False
        )
        warnings = self.duplicates + validation.warnings + validation.rejected  # rejected lines are skipped
        by_domain: dict[str, list[Line]] = defaultdict(list)
        for line in validation.accepted:
            by_domain[line.mailbox.domain].append(line)
        keep: dict[str, set[str]] = defaultdict(set)
        for address in validation.rejected_addresses:
            keep[address.rpartition("@")[2]].add(address)

        now = utc_now()
        summary: dict[str, Any] = {"file": source.label, "file_ts": source.ts}
        key = conn.execute(
            insert(run).values(kind="mssante", source=source.label, file_ts=source.ts, started_at=now, status="running")
        ).inserted_primary_key
        assert key is not None  # an INSERT of one row
        run_id = int(key[0])
        summary["run"] = run_id
        domains = _lock_national_domains(conn, set(by_domain), now)
        existing = bulk_reads.all_mailboxes(conn)
        index = {address: e for boxes in existing.values() for address, e in boxes.items()}
        skipped: list[str] = []
        plans: list[DomainPlan] = []
        targets = set(by_domain) | {
            d for d, boxes in existing.items() if domains.get(d, (0, None))[1] is None and any(e.active for e in boxes.values())
        }
        progress.start("Comparing the MSSanté domains", len(targets), pace.domains(source, first=not existing),
                       unit="domains")
        for name in sorted(targets):
            progress.advance(1)
            if domains.get(name, (0, None))[1] is not None:
                skipped.append(name)
                continue
            lines = by_domain.get(name, [])
            own = existing.get(name, {})
            elsewhere = {ln.mailbox.address: index[ln.mailbox.address] for ln in lines
                         if ln.mailbox.address not in own and ln.mailbox.address in index}
            plan = plan_domain(name, lines, own, elsewhere, keep.get(name, set()), SOURCE_NATIONAL)
            warnings.extend(plan.rejected)
            plans.append(plan)
        deleted = sum(p.deleted for p in plans)
        active = sum(p.active_before for p in plans)
        if not force and deleted > settings.mass_delete_min and deleted > settings.mass_delete_ratio * active:
            raise Conflict(
                f"{source.label} would delete {deleted:,} of the {active:,} national mailboxes "
                f"(more than {settings.mass_delete_ratio:.0%}): is the file truncated? Nothing was changed. "
                "Use --force if it is complete"
            )
        write_plans(conn, plans, run_id, now)
        totals: Counter[str] = Counter()
        changed: dict[str, dict[str, int]] = {}
        for plan in plans:
            counts = plan.counts()
            totals.update(counts)
            if plan.changes:
                changed[plan.domain] = counts
        warnings.sort(key=lambda f: f.line or 0)
        messages = [
            f"domain {name} belongs to a local operator: its {len(by_domain.get(name, []))} national line(s) were ignored"
            for name in skipped
        ] + [_describe(f) for f in warnings]
        summary.update(
            domains=len(by_domain),
            **{k: totals.get(k, 0) for k in ("created", "updated", "deleted", "unchanged")},
            rejected=len(validation.rejected) + sum(len(p.rejected) for p in plans),
            skipped_domains=skipped,
            by_domain=changed,
            warning_counts=dict(Counter(f.code for f in warnings)),
            warnings=messages[:MAX_WARNINGS] + (
                [f"… and {len(messages) - MAX_WARNINGS} more warnings"] if len(messages) > MAX_WARNINGS else []
            ),
        )
        conn.execute(update(run).where(run.c.id == run_id).values(
            status="ok", finished_at=utc_now(), report=json.dumps(summary, ensure_ascii=False)
        ))
        return summary
