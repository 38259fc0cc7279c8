"""THE diff engine for a domain's complete list of mailboxes.

A publication (operator, domain, exhaustive list) becomes: creations, updates,
deletions (tombstones: `active` false, never forgotten) and unchanged boxes.
Identical content (same digest) writes nothing. Every change appends one
journal row (entity 'mailbox', key = address, scope = domain, data = the new
public state, without `responsible`). The national mirror goes through the
same `plan_domain` / `write_plans`, so both sources behave identically.

Decisions:
- An address is tied to its domain (it is part of it) and unique nationally.
- The type of an address never changes, even after deletion: re-creating a
  tombstoned address with another type is rejected (TYPE_IMMUTABLE), because
  clients may still hold the old box and its history must stay readable.
- A rejected line never deletes anything: an existing box whose address is on
  a rejected line stays exactly as it was.
- Apply = one write transaction. Publications of one domain are serialised by
  locking the domain row (SELECT … FOR UPDATE on PostgreSQL; SQLite already
  serialises writers with BEGIN IMMEDIATE); each transaction locks one domain
  (or, for the national import, domains in name order), so no deadlock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, insert

from annuaire.config import Settings
from annuaire.errors import Forbidden, MassDeletion, PreconditionFailed
from annuaire.mailboxes import bulk_reads
from annuaire.mailboxes.entries import Entry
from annuaire.mailboxes.model import (
    INSERT_COLUMNS,
    SOURCE_OPERATOR,
    Mailbox,
    public_json_sql,
)
from annuaire.mailboxes.operators import Operator, domains_of
from annuaire.mailboxes.rules import (
    RULES,
    Finding,
    Line,
    Validation,
    Validator,
    finding,
    normalise_domain,
)
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.dialect import index_scans, relaxed_commit, row_lock
from annuaire.store.diff import JOURNAL_COLUMNS, bulk_insert, bulk_inserts
from annuaire.store.schema import run
from annuaire.store.select import mark
from annuaire.store.visibility import REASONS, hidden_boxes


@dataclass
class DomainPlan:
    """What applying one domain's list will do, computed before writing anything."""

    domain: str
    source: str
    inserts: list[Mailbox] = field(default_factory=list)
    updates: list[tuple[bulk_reads.Existing, Mailbox, str]] = field(default_factory=list)  # change: created|updated
    deletes: list[tuple[str, bulk_reads.Existing]] = field(default_factory=list)
    unchanged: int = 0
    rejected: list[Finding] = field(default_factory=list)  # store-level rejections
    active_before: int = 0
    offered: set[str] = field(default_factory=set)  # addresses of the lines diffed so far

    @property
    def created(self) -> int:
        return len(self.inserts) + sum(1 for _, _, change in self.updates if change == "created")

    @property
    def updated(self) -> int:
        return sum(1 for _, _, change in self.updates if change == "updated")

    @property
    def deleted(self) -> int:
        return len(self.deletes)

    @property
    def changes(self) -> bool:
        return bool(self.inserts or self.updates or self.deletes)

    def counts(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted, "unchanged": self.unchanged}

    def add(self, lines: list[Line], existing: dict[str, bulk_reads.Existing],
            elsewhere: dict[str, bulk_reads.Existing]) -> None:
        """Diff some of the list's lines (see plan_domain); call close() after the last ones."""
        domain, source, offered = self.domain, self.source, self.offered
        for line in lines:
            mb = line.mailbox
            old = existing.get(mb.address)
            if old is None:
                other = elsewhere.get(mb.address)
                if other is not None and other.domain != domain:
                    self.rejected.append(finding("ADDRESS_IN_OTHER_DOMAIN", line.entry, mb.address, value=other.domain))
                    continue
                self.inserts.append(mb)
                offered.add(mb.address)
                continue
            offered.add(mb.address)
            if old.type != mb.type:
                self.rejected.append(finding("TYPE_IMMUTABLE", line.entry, mb.address, old=old.type, value=mb.type))
                continue  # the stored box stays as it is (not deleted either)
            new_digest = mb.digest(source)
            if not old.active:
                self.updates.append((old, mb, "created"))
            elif old.digest != new_digest:
                self.updates.append((old, mb, "updated"))
            else:
                self.unchanged += 1

    def close(self, existing: dict[str, bulk_reads.Existing], keep: set[str]) -> None:
        """The deletions: active boxes not offered, but those of rejected lines (`keep`)."""
        for address, old in existing.items():
            if old.active and address not in self.offered and address not in keep:
                self.deletes.append((address, old))


def plan_domain(
    domain: str,
    lines: list[Line],
    existing: dict[str, bulk_reads.Existing],
    elsewhere: dict[str, bulk_reads.Existing],
    keep: set[str],
    source: str,
) -> DomainPlan:
    """Diff a domain's validated lines against its stored boxes.

    `existing`: every stored box of the domain (tombstones included);
    `elsewhere`: stored boxes of OTHER domains having one of the lines' addresses;
    `keep`: addresses of rejected lines (their existing boxes are left alone).
    """
    plan = DomainPlan(domain, source, active_before=sum(1 for e in existing.values() if e.active))
    plan.add(lines, existing, elsewhere)
    plan.close(existing, keep)
    return plan


def write_plans(conn: Connection, plans: list[DomainPlan], run_id: int, now: str) -> None:
    """Write plans (one per domain): inserts, updates, tombstones, journal rows and domain
    versions, each as one batched statement whatever the number of domains."""
    last = last_id(conn)
    with bulk_inserts(conn, "mailbox", INSERT_COLUMNS) as write:
        for plan in plans:
            write(insert_rows(plan, plan.inserts, run_id, now))
    write_changes(conn, plans, run_id, now, last)


def last_id(conn: Connection) -> int:
    """The highest mailbox id: the boxes a publication inserts get higher ones."""
    return conn.exec_driver_sql('SELECT COALESCE(MAX(id), 0) FROM "mailbox"').scalar() or 0


def insert_rows(plan: DomainPlan, boxes: list[Mailbox], run_id: int, now: str) -> list[tuple]:
    """The mailbox rows of some of a plan's creations, in address order: index pages are filled
    in order instead of at random (much less I/O)."""
    source, scope = plan.source, plan.domain
    return [
        (mb.address, scope, *mb.values(), source, run_id, True, 1, now, mb.digest(source))
        for mb in sorted(boxes, key=lambda mb: mb.address)
    ]


def write_changes(conn: Connection, plans: list[DomainPlan], run_id: int, now: str, last: int) -> None:
    """Everything of the plans but the rows of their creations, already inserted with ids above
    `last`: the journal of those, updates, tombstones and domain versions."""
    m = mark(conn)
    updates: list[tuple] = []
    deletes: list[tuple] = []
    journal_rows: list[tuple] = []

    def log(scope: str, address: str, change: str, before: int | None, after: int | None, data: dict) -> None:
        journal_rows.append((run_id, now, "mailbox", address, change, scope, before, after, orjson.dumps(data).decode()))

    def published(mb: Mailbox, source: str) -> dict[str, Any]:
        data = mb.public()  # a new dict: completed in place rather than copied
        data["active"] = True
        data["source"] = source
        return data

    for plan in plans:
        source, scope = plan.source, plan.domain
        for old, mb, change in plan.updates:
            dig = mb.digest(source)
            updates.append((*mb.values(), source, run_id, True, now, dig, old.id))
            log(scope, mb.address, change, old.digest, dig, published(mb, source))
        for address, old in plan.deletes:
            deletes.append((False, now, run_id, old.id))
            log(scope, address, "deleted", old.digest, None, {"address": address, "active": False})
    if any(plan.inserts for plan in plans):
        # The creations are journaled by the database from the rows just written: one statement
        # instead of a JSON document per box built in Python and sent back (0.25 s for 67k boxes).
        # The new rows are the end of the primary key: read by it, whatever the planner thinks of
        # the table (PostgreSQL's statistics taken while it was empty made it scan 536k rows per publication).
        with index_scans(conn):
            conn.exec_driver_sql(
                f'INSERT INTO "journal" (run_id, at, entity, "key", change, scope, after_digest, data) '
                f"SELECT {m}, {m}, 'mailbox', address, 'created', domain, digest, {public_json_sql(conn)} "
                f'FROM "mailbox" WHERE id > {m} AND run_id = {m} AND version = 1 ORDER BY id',
                (run_id, now, last, run_id),
            )
    if updates:
        sets = ", ".join(f'"{c}" = {m}' for c in INSERT_COLUMNS[2:-4])  # data columns, source, run_id
        conn.exec_driver_sql(
            f'UPDATE "mailbox" SET {sets}, active = {m}, version = version + 1, '
            f"last_updated = {m}, digest = {m} WHERE id = {m}",
            updates,
        )
    if deletes:
        conn.exec_driver_sql(
            f'UPDATE "mailbox" SET active = {m}, version = version + 1, last_updated = {m}, '
            f"run_id = {m} WHERE id = {m}",
            deletes,
        )
    bulk_insert(conn, "journal", JOURNAL_COLUMNS, journal_rows)
    if plans:
        conn.exec_driver_sql(
            f'UPDATE "domain" SET version = version + {m}, last_published = {m} WHERE name = {m}',
            [(1 if plan.changes else 0, now, plan.domain) for plan in plans],
        )


def lock_domain(conn: Connection, name: str, now: str) -> tuple[int, int | None]:
    """(version, operator id) of the domain, locked until commit; the row is created if missing."""
    m = mark(conn)
    conn.exec_driver_sql(
        f"INSERT INTO domain (name, version, created_at) VALUES ({m}, 0, {m}) ON CONFLICT (name) DO NOTHING",
        (name, now),
    )
    version, owner = conn.exec_driver_sql(
        f"SELECT version, operator_id FROM domain WHERE name = {m}{row_lock(conn)}", (name,)
    ).one()
    return int(version), owner


def mass_deletion(plan: DomainPlan, settings: Settings) -> dict[str, Any] | None:
    """The figures when the plan deletes more than the allowed share of the domain, else None."""
    if plan.deleted <= settings.mass_delete_min or plan.deleted <= settings.mass_delete_ratio * plan.active_before:
        return None
    return {
        "would_delete": plan.deleted,
        "active": plan.active_before,
        "ratio": round(plan.deleted / plan.active_before, 4) if plan.active_before else 1.0,
        "max_ratio": settings.mass_delete_ratio,
        "min": settings.mass_delete_min,
    }


def record_run(store: Store, **values: Any) -> int:
    """A run row in its own small transaction (dry runs and refusals leave nothing else)."""
    with store.write() as conn:
        key = conn.execute(insert(run).values(**values)).inserted_primary_key
        assert key is not None  # an INSERT of one row
        return int(key[0])


def report_dict(run_id: int | None, domain: str, plan: DomainPlan | None, validation: Validation, *, dry_run: bool,
                version: int) -> dict[str, Any]:
    rejected = sorted([*validation.rejected, *(plan.rejected if plan else [])], key=lambda f: f.index)
    counts = plan.counts() if plan else {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0}
    return {
        "publication": run_id,
        "domain": domain,
        "dry_run": dry_run,
        "version": version,
        **counts,
        "rejected": [f.as_dict() for f in rejected],
        "warnings": [f.as_dict() for f in validation.warnings],
    }


class _DryRun(Exception):
    """Raised inside the transaction to roll it back after planning."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__("dry run")
        self.report = report


# On PostgreSQL a longer list is checked this many entries at a time inside the write transaction,
# each part's new boxes streaming to the server (one COPY) while the next part is checked: the
# server maintains the indexes (the trigram index above all: ~1 s for 67k boxes) while Python
# validates. Other lists (and every list on SQLite, where inserting is this process's own work)
# are checked whole before the write transaction begins.
STREAMED_PART = 4096

# Good-practice warnings change nothing that is written: a publication computes them on
# another connection while its own connection writes.
_ADVICE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="publication-advice")


def _advise(store: Store, settings: Settings, validation: Validation) -> None:
    with store.read() as conn:
        Validator(settings).advise(conn, validation)


def _plan_and_insert(conn: Connection, lookups: Connection, plan: DomainPlan, parts: Iterable[list[Line]],
                     existing: dict[str, bulk_reads.Existing], run_id: int | None, now: str) -> None:
    """Diff the checked lines part by part, writing each part's creations (none when `run_id` is
    None: a dry run) as soon as they are known; other domains' boxes are read on `lookups`."""
    with nullcontext(None) if run_id is None else bulk_inserts(conn, "mailbox", INSERT_COLUMNS) as write:
        for lines in parts:
            new = [ln.mailbox.address for ln in lines if ln.mailbox.address not in existing]
            elsewhere = bulk_reads.mailboxes_by_address(lookups, new, other_than=plan.domain) if new else {}
            first = len(plan.inserts)
            plan.add(lines, existing, elsewhere)
            if write is not None:
                assert run_id is not None  # write is None for a dry run
                write(insert_rows(plan, plan.inserts[first:], run_id, now))


def hidden_warnings(conn: Connection, domain: str, rejected: list[Finding]) -> list[Finding]:
    """BOX_HIDDEN for the existing boxes that rejected lines leave in place but the public does not see
    (their holder left, their structure closed…): the operator learns why (`store.visibility`)."""
    by_address = {f.address: f for f in rejected if f.address}
    if not by_address:
        return []
    rule = RULES["BOX_HIDDEN"]
    out = []
    for hidden in hidden_boxes(conn, domains=[domain], addresses=by_address):
        line = by_address[hidden.address]
        fr = ", ".join(REASONS[r].fr for r in hidden.reasons)
        en = ", ".join(REASONS[r].en for r in hidden.reasons)
        out.append(Finding("BOX_HIDDEN", line.index, hidden.address, rule.fr.format(reasons=fr),
                           rule.en.format(reasons_en=en), line.line))
    return out


def check_owner(conn: Connection, op: Operator, name: str) -> None:
    row = conn.exec_driver_sql(f"SELECT operator_id FROM domain WHERE name = {mark(conn)}", (name,)).first()
    if row is None or row[0] != op.id:
        raise Forbidden(
            f"operator {op.name!r} may not publish domain {name!r}: it is not one of its domains "
            f"({', '.join(domains_of(conn, op.id)) or 'none'})"
        )


def publish(
    store: Store,
    settings: Settings,
    op: Operator,
    domain: str,
    entries: list[Entry],
    *,
    dry_run: bool = False,
    confirm_mass_delete: bool = False,
    if_match: int | None = None,
) -> dict[str, Any]:
    """Replace the domain's mailboxes by this list; returns the report (see the module docstring)."""
    domain = normalise_domain(domain)
    started = utc_now()
    validation = Validation()
    run_values = {"kind": "publication", "source": op.name, "domain": domain, "operator_id": op.id, "started_at": started}
    streamed = not store.in_process and not dry_run and len(entries) > STREAMED_PART
    try:
        with ExitStack() as reading:
            reader = reading.enter_context(store.read())
            check_owner(reader, op, domain)  # before the work; checked again under the lock
            parts: Iterable[list[Line]] = Validator(settings, good_practice=False).parts(
                reader, entries, domain, validation, size=STREAMED_PART if streamed else None)
            if not streamed:
                parts = list(parts)  # checked before taking the write lock, which other writers wait for
                if store.readers_hold_writes:
                    reading.close()  # its snapshot would hold back the checkpoints of the writes
            # Good-practice advice is computed on its own connection while the list is written: on
            # PostgreSQL from now on (the database writes in its own process); on SQLite once the rows
            # are inserted (the driver's inserts and another Python thread convoy), and for a streamed
            # list once it is checked.
            advice = _ADVICE.submit(_advise, store, settings, validation) if not store.in_process and not streamed else None
            with store.write() as conn:
                # A crash may lose the last instant of publications, never part of one; the next one
                # restores them. 5,000 publications a day must not wait on an fsync each.
                relaxed_commit(conn)
                now = utc_now()
                version, owner = lock_domain(conn, domain, now)
                if owner != op.id:
                    raise Forbidden(f"domain {domain!r} no longer belongs to operator {op.name!r}")
                if if_match is not None and if_match != version:
                    raise PreconditionFailed(
                        f"If-Match: the list of {domain} is at version {version}, not {if_match}; "
                        "fetch it again (GET …/mailboxes) and retry"
                    )
                existing = bulk_reads.mailboxes_of_domain(conn, domain)
                plan = DomainPlan(domain, SOURCE_OPERATOR, active_before=sum(1 for e in existing.values() if e.active))
                m = mark(conn)
                run_id = None if dry_run else conn.exec_driver_sql(
                    "INSERT INTO run (kind, source, domain, operator_id, started_at, status) "
                    f"VALUES ('publication', {m}, {m}, {m}, {m}, 'running') RETURNING id",
                    (op.name, domain, op.id, started),
                ).scalar_one()
                last = last_id(conn)
                # While the new boxes go to PostgreSQL (COPY), `conn` runs nothing else: the other
                # domains' boxes are looked up on the reading connection.
                _plan_and_insert(conn, conn if store.in_process else reader, plan, parts, existing, run_id, now)
                if advice is None:
                    advice = _ADVICE.submit(_advise, store, settings, validation)
                plan.close(existing, validation.rejected_addresses)
                figures = mass_deletion(plan, settings)
                if figures and not confirm_mass_delete:
                    raise MassDeletion(
                        f"this list would delete {plan.deleted} of the {plan.active_before} mailboxes of {domain} "
                        f"({figures['ratio']:.0%}; the limit is {settings.mass_delete_ratio:.0%} and "
                        f"{settings.mass_delete_min} boxes). If the list really is complete, send it again with "
                        "?confirm_mass_delete=true",
                        figures,
                    )
                hidden = hidden_warnings(conn, domain, validation.rejected)
                if dry_run:
                    advice.result()
                    validation.warnings = sorted([*validation.warnings, *hidden], key=lambda f: f.index)
                    raise _DryRun(report_dict(None, domain, plan, validation, dry_run=True,
                                              version=version + (1 if plan.changes else 0)))
                assert run_id is not None  # inserted above unless dry_run
                write_changes(conn, [plan], run_id, now, last)
                advice.result()
                validation.warnings = sorted([*validation.warnings, *hidden], key=lambda f: f.index)
                report = report_dict(run_id, domain, plan, validation, dry_run=False,
                                     version=version + (1 if plan.changes else 0))
                conn.exec_driver_sql(
                    f"UPDATE run SET status = 'ok', finished_at = {m}, report = {m} WHERE id = {m}",
                    (utc_now(), orjson.dumps(report).decode(), run_id),
                )
                return report
    except _DryRun as dry:
        dry_report = dry.report
        dry_report["publication"] = record_run(store, **run_values, status="dry_run", finished_at=utc_now(),
                                               report=json.dumps(dry_report, ensure_ascii=False))
        return dry_report
    except MassDeletion as exc:
        exc.figures["publication"] = record_run(  # type: ignore[index]  # __init__ stores a dict (the class default is read-only)
            store, **run_values, status="refused", finished_at=utc_now(),
            report=json.dumps({"domain": domain, "refused": exc.message, **exc.figures}, ensure_ascii=False),
        )
        raise
