"""One synchronisation of the local address book with a national MSSanté extraction.

    acquire (file, or conditional download; 304 -> nothing to do)
    read + validate the WHOLE extraction, select lines with the filters
    diff by address and line digest against the national contacts held
    ONE write transaction: remove / replace / add changed lines only,
        re-merge local contacts, record validators and the run
    report: counts, merges, suspected duplicates

Nothing is written before the extraction is fully validated, and everything
is written in one SQLite transaction: an interrupted run (error, Ctrl-C,
kill -9, power cut) leaves the local base exactly as it was. Local contacts
are only read.

A dry run stops after the diff and reports what would be added, changed and
removed, writing nothing (not even a new --local file). A run that would
remove more than MASS_REMOVAL_SHARE (and more than MASS_REMOVAL_MIN) of the
synchronised contacts is refused unless confirmed: a changed or mistyped
filter, or a truncated extraction, would otherwise empty the address book.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import compress
from operator import ne
from pathlib import Path
from typing import Any, cast

from annuaire.errors import MassDeletion
from annuaire.localsync import dedup
from annuaire.localsync.contacts import national_cn, national_keys
from annuaire.localsync.db import NATIONAL_FIELDS, NATIONAL_KEYS, LocalBase, set_meta
from annuaire.localsync.filters import Filters
from annuaire.localsync.reader import Extraction, Member, parse_member, read_member
from annuaire.localsync.source import Acquired, acquire
from annuaire.store.clock import utc_now

BATCH = 5_000
MASS_REMOVAL_SHARE = 0.20  # of the synchronised contacts …
MASS_REMOVAL_MIN = 10  # … and more than this many: removing them needs a confirmation
PREVIEW = 20  # contacts of each kind a dry run describes (the report lists every address)
BULK = 50_000  # changed lines from which secondary indexes are rebuilt rather than maintained
_INSERT = (
    f"INSERT OR REPLACE INTO national ({', '.join(NATIONAL_FIELDS + NATIONAL_KEYS)}, digest) "
    f"VALUES ({', '.join('?' * (len(NATIONAL_FIELDS) + len(NATIONAL_KEYS) + 1))})"
)

_COLUMNS = NATIONAL_FIELDS + NATIONAL_KEYS
# Columns that some index holds (see db.py): a row whose values of these did not change is updated in place.
_INDEXED = ("bal_type", "id_nat", "structure", "cn_key", "last_name_key", "first_name_key", "org_key")
_CN_KEY = _COLUMNS.index("cn_key")
_INDEXED_POS = tuple(_COLUMNS.index(c) for c in _INDEXED)
_PLAIN_POS = tuple(i for i, c in enumerate(_COLUMNS) if c not in _INDEXED and c != "address")
_UPDATE = (
    f"UPDATE national SET {', '.join(_COLUMNS[i] + ' = ?' for i in _PLAIN_POS)}, digest = ? WHERE address = ?"
)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class SyncReport:
    source: str
    status: str = "ok"  # ok | not-modified | unchanged
    extraction_ts: str = ""
    filters: str = ""
    lines: int = 0
    duplicate_lines: int = 0
    selected: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    merges: list[dict[str, object]] = field(default_factory=list)
    unmerged: list[dict[str, object]] = field(default_factory=list)
    suspected_duplicates: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    dry_run: bool = False
    # Dry run: every address that would be added, updated, removed, and the first PREVIEW of each described.
    would_add: list[str] = field(default_factory=list)
    would_update: list[str] = field(default_factory=list)
    would_remove: list[str] = field(default_factory=list)
    preview: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


def _silent(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class Diff:
    """Addresses to add, to rewrite (added and updated, sorted) and to remove."""

    added: int
    changed: list[str]
    removed: list[str]


def diff(existing: dict[str, int], digests: dict[str, int]) -> Diff:
    """Compare the stored digests with the extraction's, by address."""
    removed = sorted(existing.keys() - digests.keys())  # a set difference, in C
    addresses = list(digests)
    # Mapped and compared in C: no Python call per line.
    changed = list(compress(addresses, map(ne, map(existing.get, addresses), digests.values())))
    changed.sort()
    return Diff(sum(1 for a in changed if a not in existing), changed, removed)


def _open(local_path: Path, dry_run: bool) -> LocalBase:
    if dry_run:  # read only: neither created nor initialised
        return LocalBase.open(local_path, create=False) if Path(local_path).exists() else LocalBase.empty()
    return LocalBase.open(local_path)


def sync(
    local_path: Path,
    source: str,
    filters: Filters,
    *,
    manifest: Path | None = None,
    force: bool = False,
    dry_run: bool = False,
    confirm_mass_removal: bool = False,
    progress: Progress = _silent,
) -> SyncReport:
    """Bring the national contacts of `local_path` to the extraction at `source` (or say what would change)."""
    started = time.perf_counter()
    report = SyncReport(source=source, filters=filters.describe(), dry_run=dry_run)
    with _open(local_path, dry_run) as base:
        meta = base.meta()
        same_filters = meta.get("filters") == filters.to_json()
        progress("fetch", 0, 0)
        acquired = acquire(source, Path(local_path).resolve().parent, meta, same_filters and not force, manifest)
        try:
            if acquired.not_modified:
                report.status = "not-modified"
                report.extraction_ts = meta.get("extraction_ts", "")
                return _finish(report, started)
            if (
                not force
                and same_filters
                and acquired.remember.get("source_sha256")
                and acquired.remember.get("source_sha256") == meta.get("source_sha256")
            ):
                report.status = "unchanged"  # byte-identical to the extraction already applied
                report.extraction_ts = meta.get("extraction_ts", "")
                return _finish(report, started)
            assert acquired.path is not None
            if dry_run:
                extraction, existing, changes = _read_and_diff(base.conn, acquired, filters, report, progress)
                refusal = _mass_removal(changes, len(existing), extraction, meta, filters)
                if refusal:
                    report.warnings.append(f"{refusal}: a real run would be refused without --confirm-mass-removal")
                _describe(base.conn, extraction, existing, changes, report)
                return _finish(report, started)
            with base.write() as conn:
                extraction, existing, changes = _read_and_diff(conn, acquired, filters, report, progress)
                refusal = _mass_removal(changes, len(existing), extraction, meta, filters)
                if refusal and not confirm_mass_removal:
                    raise MassDeletion(
                        f"{refusal}. Nothing was changed. Check the filters and the extraction; if these "
                        "removals are intended, run again with --confirm-mass-removal (--dry-run lists them)",
                        {"removed": len(changes.removed), "synchronised": len(existing)},
                    )
                touched = _apply(conn, extraction, existing, changes, progress)
                links = dedup.relink(conn)
                report.merges, report.unmerged = links.merged, links.unmerged
                report.suspected_duplicates = dedup.suspected_duplicates(conn, touched=touched)
                set_meta(
                    conn,
                    {
                        **acquired.remember,
                        "filters": filters.to_json(),
                        "extraction_ts": extraction.ts,
                        "generated_at": acquired.manifest.generated_at if acquired.manifest else None,
                        "last_sync": utc_now(),
                    },
                )
                conn.execute(
                    "INSERT INTO sync_run (at, source, extraction, status, report) VALUES (?, ?, ?, ?, ?)",
                    (utc_now(), source, extraction.ts, report.status, _summary(report)),
                )
        finally:
            acquired.cleanup()
    return _finish(report, started)


def _read_and_diff(
    conn: sqlite3.Connection, acquired: Acquired, filters: Filters, report: SyncReport, progress: Progress
) -> tuple[Extraction, dict[str, int], Diff]:
    """Validate and select the extraction's lines, and compare them with the stored ones."""
    member, existing = _read_beside(conn, acquired)
    extraction = parse_member(member, filters, lambda n: progress("read", n, 0))
    del member  # the file's bytes (tens of MB): not kept while writing
    report.extraction_ts = extraction.ts
    report.lines = extraction.lines
    report.duplicate_lines = extraction.duplicates
    report.selected = len(extraction.digests)
    changes = diff(existing, extraction.digests)
    report.added = changes.added
    report.updated = len(changes.changed) - changes.added
    report.removed = len(changes.removed)
    report.unchanged = len(extraction.digests) - len(changes.changed)
    return extraction, existing, changes


def _mass_removal(
    changes: Diff, synchronised: int, extraction: Extraction, meta: dict[str, str], filters: Filters
) -> str | None:
    """Why this run would remove too many contacts at once, or None."""
    removed = len(changes.removed)
    if removed <= MASS_REMOVAL_MIN or removed <= MASS_REMOVAL_SHARE * synchronised:
        return None
    previous = meta.get("filters")
    if previous and previous != filters.to_json():
        known = Filters.__dataclass_fields__
        before = Filters(**{k: tuple(v) for k, v in json.loads(previous).items() if k in known}).describe()
        why = f"the filters changed since the last synchronisation ({before} -> {filters.describe()})"
    else:
        why = (f"the new extraction no longer holds them ({extraction.lines:,} lines, {len(extraction.digests):,} "
               "selected: a truncated or wrong file?)")
    return (f"this run would remove {removed:,} of the {synchronised:,} synchronised contacts "
            f"({removed / synchronised:.0%}, more than {MASS_REMOVAL_SHARE:.0%}) because {why}")


def _describe(
    conn: sqlite3.Connection, extraction: Extraction, existing: dict[str, int], changes: Diff, report: SyncReport
) -> None:
    """The dry run's lists: every address, and the first PREVIEW of each kind with names and changed fields."""
    report.would_add = [a for a in changes.changed if a not in existing]
    report.would_update = [a for a in changes.changed if a in existing]
    report.would_remove = changes.removed
    stored = _stored_rows(conn, report.would_update[:PREVIEW] + report.would_remove[:PREVIEW])
    preview: dict[str, list[dict[str, Any]]] = {"add": [], "update": [], "remove": []}
    for address in report.would_add[:PREVIEW]:
        values = dict(zip(NATIONAL_FIELDS, extraction.fields(extraction.raw[address]), strict=True))
        preview["add"].append({"address": address, "name": _name(values)})
    for address in report.would_update[:PREVIEW]:
        values = dict(zip(NATIONAL_FIELDS, extraction.fields(extraction.raw[address]), strict=True))
        old = stored[address]
        fields = [f for f in NATIONAL_FIELDS if (old[f] or "") != values[f]]
        preview["update"].append({"address": address, "name": _name(values), "fields": fields})
    for address in report.would_remove[:PREVIEW]:
        preview["remove"].append({"address": address, "name": _name(stored[address])})
    report.preview = preview


def _name(values: dict[str, Any]) -> str:
    return national_cn(values["bal_type"] or "", values["first_name"] or "", values["last_name"] or "",
                       values["service"] or "", values["org_name"] or "")


def _stored_rows(conn: sqlite3.Connection, addresses: list[str]) -> dict[str, dict[str, Any]]:
    if not addresses:
        return {}
    sql = f"SELECT {', '.join(NATIONAL_FIELDS)} FROM national WHERE address IN ({', '.join('?' * len(addresses))})"
    return {row[1]: dict(zip(NATIONAL_FIELDS, row, strict=True)) for row in conn.execute(sql, addresses)}


def _read_beside(conn: sqlite3.Connection, acquired: Acquired) -> tuple[Member, dict[str, int]]:
    """The extraction file (inflated in a thread) and the stored digests (read meanwhile here).

    Inflating runs without the GIL. Parsing does not: the driver takes the GIL back for
    every row, and a parsing thread convoyed with this one (measured 4x slower)."""
    assert acquired.path is not None  # checked by the caller: the source was modified
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read_member, acquired.path, acquired.manifest, acquired.label)
        existing = _stored_digests(conn)
        return reading.result(), existing


def _stored_digests(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT address, digest FROM national"))


def _apply(
    conn: sqlite3.Connection,
    extraction: Extraction,
    existing: dict[str, int],
    changes: Diff,
    progress: Progress,
) -> set[str]:
    """Write only the changed national contacts (caller's transaction).

    Returns the name keys of the added and changed contacts.
    """
    digests, raw_lines = extraction.digests, extraction.raw
    removed = [(a,) for a in changes.removed]
    changed = changes.changed
    total = len(removed) + len(changed)
    done = 0
    progress("apply", done, total)
    for i in range(0, len(removed), BATCH):
        conn.executemany("DELETE FROM national WHERE address = ?", removed[i : i + BATCH])
        done += len(removed[i : i + BATCH])
        progress("apply", done, total)
    # Loading a large share of the table: building the indexes once, after, is faster.
    rebuild = _drop_indexes(conn) if len(changed) > max(BULK, len(existing)) else []
    touched: set[str] = set()
    for i in range(0, len(changed), BATCH):
        batch = changed[i : i + BATCH]
        old_keys = _indexed_values(conn, [a for a in batch if a in existing])
        replace, update = [], []
        for address in batch:
            dig = digests[address]
            values = extraction.fields(raw_lines[address])
            row = (*values, *national_keys(values), dig)
            touched.add(cast(str, row[_CN_KEY]))  # one of national_keys()
            if old_keys.get(address) == tuple(row[p] for p in _INDEXED_POS):
                # Most daily changes leave names and ids alone: no index to touch.
                update.append((*(row[p] for p in _PLAIN_POS), dig, address))
            else:
                replace.append(row)
        conn.executemany(_INSERT, replace)
        conn.executemany(_UPDATE, update)
        done += len(batch)
        progress("apply", done, total)
    for sql in rebuild:
        conn.execute(sql)
    return touched


def _indexed_values(conn: sqlite3.Connection, addresses: list[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for i in range(0, len(addresses), 500):
        chunk = addresses[i : i + 500]
        sql = f"SELECT address, {', '.join(_INDEXED)} FROM national WHERE address IN ({', '.join('?' * len(chunk))})"
        for row in conn.execute(sql, chunk):
            out[row[0]] = tuple(row[1:])
    return out


def _drop_indexes(conn: sqlite3.Connection) -> list[str]:
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'national' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in indexes]


def _summary(report: SyncReport) -> str:
    d = asdict(report)
    d["suspected_duplicates"] = {
        "local": len(report.suspected_duplicates.get("local", [])),
        "national_groups": report.suspected_duplicates.get("national_groups", 0),
    }
    return json.dumps(d, ensure_ascii=False)


def _finish(report: SyncReport, started: float) -> SyncReport:
    report.seconds = round(time.perf_counter() - started, 3)
    return report
