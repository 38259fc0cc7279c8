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

from annuaire.localsync import dedup
from annuaire.localsync.contacts import national_keys
from annuaire.localsync.db import NATIONAL_FIELDS, NATIONAL_KEYS, LocalBase, set_meta
from annuaire.localsync.filters import Filters
from annuaire.localsync.reader import Extraction, Member, parse_member, read_member
from annuaire.localsync.source import Acquired, acquire
from annuaire.store.clock import utc_now

BATCH = 5_000
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

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


def _silent(stage: str, done: int, total: int) -> None:
    pass


def sync(
    local_path: Path,
    source: str,
    filters: Filters,
    *,
    manifest: Path | None = None,
    force: bool = False,
    progress: Progress = _silent,
) -> SyncReport:
    """Bring the national contacts of `local_path` to the extraction at `source`."""
    started = time.perf_counter()
    report = SyncReport(source=source, filters=filters.describe())
    with LocalBase.open(local_path) as base:
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
            with base.write() as conn:
                member, existing = _read_beside(conn, acquired)
                extraction = parse_member(member, filters, lambda n: progress("read", n, 0))
                del member  # the file's bytes (tens of MB): not kept while writing
                report.extraction_ts = extraction.ts
                report.lines = extraction.lines
                report.duplicate_lines = extraction.duplicates
                report.selected = len(extraction.digests)
                touched = _apply(conn, extraction, existing, report, progress)
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
    conn: sqlite3.Connection, extraction: Extraction, existing: dict[str, int], report: SyncReport, progress: Progress
) -> set[str]:
    """Diff by digest and write only the changed national contacts (caller's transaction).

    Returns the name keys of the added and changed contacts.
    """
    digests, raw_lines = extraction.digests, extraction.raw
    removed = [(a,) for a in existing.keys() - digests.keys()]  # a set difference, in C
    addresses = list(digests)
    # Mapped and compared in C: no Python call per line.
    changed = list(compress(addresses, map(ne, map(existing.get, addresses), digests.values())))
    changed.sort()
    report.added = sum(1 for a in changed if a not in existing)
    report.updated = len(changed) - report.added
    report.removed = len(removed)
    report.unchanged = len(digests) - len(changed)
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
