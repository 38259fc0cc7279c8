"""The diff engine: replace the active content of a table by what is offered.

Used by every writer of directory records (referential import, national
mailbox mirror, operator publications): a record offered with the same digest
as the stored active one is left alone (no new version, no journal entry); a
new key is created; a changed one gets version+1; a key not offered again is
deactivated (tombstone). Every change appends one journal row.

Writes are batched: executemany for updates, COPY (PostgreSQL) or
executemany (SQLite) for inserts, so a national file loads in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, Table

from annuaire.store.schema import journal

RECORD_COLUMNS = ("active", "version", "last_updated", "digest")
BATCH = 20_000


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(created=self.created, updated=self.updated, deactivated=self.deactivated, unchanged=self.unchanged)


def placeholders(conn: Connection, n: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * n)


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert many rows as fast as the engine allows."""
    if not rows:
        return
    cols = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.exec_driver_sql(f'INSERT INTO "{table}" ({cols}) VALUES ({placeholders(conn, len(columns))})', rows)


JOURNAL_COLUMNS = ("run_id", "at", "entity", "key", "change", "scope", "before_digest", "after_digest", "data")


@dataclass
class TableSync:
    """One table's diff inside one write transaction.

    `columns` are the data columns (everything but id, the key column and the
    record columns). Callers offer each key at most once per run.
    """

    conn: Connection
    table: Table
    entity: str
    key_column: str
    columns: Sequence[str]
    run_id: int
    now: str
    scope_of: Any = None  # callable(key) -> scope for journal rows, or None
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        name = self.table.name
        self.existing: dict[str, tuple[int, int, bool]] = {}
        for key, id_, dig, active in self.conn.exec_driver_sql(
            f'SELECT "{self.key_column}", id, digest, active FROM "{name}"'
        ):
            self.existing[key] = (id_, dig, bool(active))
        self.next_id = 1 + (self.conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) FROM "{name}"').scalar() or 0)
        self._inserts: list[tuple] = []
        self._updates: list[tuple] = []
        self._journal: list[tuple] = []
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        sets = ", ".join(f'"{c}" = {mark}' for c in self.columns)
        self._update_sql = (
            f'UPDATE "{name}" SET {sets}, active = {mark}, version = version + 1, '
            f"last_updated = {mark}, digest = {mark} WHERE id = {mark}"
        )
        self._deactivate_sql = (
            f'UPDATE "{name}" SET active = {mark}, version = version + 1, last_updated = {mark} WHERE id = {mark}'
        )
        self.insert_columns = ("id", self.key_column, *self.columns, *RECORD_COLUMNS)

    def offer(self, key: str, values: tuple, digest: int, data: str | None = None) -> int:
        """Offer one record; returns its id. Nothing is written if unchanged."""
        prev = self.existing.pop(key, None)
        if prev is None:
            id_ = self.next_id
            self.next_id += 1
            self._inserts.append((id_, key, *values, True, 1, self.now, digest))
            self._log(key, "created", None, digest, data)
            self.counts.created += 1
            if len(self._inserts) >= BATCH:
                self._flush_inserts()
            return id_
        id_, old_digest, active = prev
        if active and old_digest == digest:
            self.counts.unchanged += 1
            return id_
        self._updates.append((*values, True, self.now, digest, id_))
        self._log(key, "updated" if active else "created", old_digest, digest, data)
        if active:
            self.counts.updated += 1
        else:
            self.counts.created += 1
        if len(self._updates) >= BATCH:
            self._flush_updates()
        return id_

    def not_offered(self) -> Iterable[tuple[str, int]]:
        """(key, id) of active records not offered in this run."""
        return ((k, v[0]) for k, v in self.existing.items() if v[2])

    def finish(self, deactivate_missing: bool = True) -> Counts:
        """Write what is buffered; tombstone active records that were not offered."""
        self._flush_inserts()
        self._flush_updates()
        if deactivate_missing:
            rows = []
            for key, (id_, dig, active) in self.existing.items():
                if active:
                    rows.append((False, self.now, id_))
                    self._log(key, "deleted", dig, None, None)
                    self.counts.deactivated += 1
            for i in range(0, len(rows), BATCH):
                self.conn.exec_driver_sql(self._deactivate_sql, rows[i : i + BATCH])
        self._flush_journal()
        self.existing.clear()
        return self.counts

    def _log(self, key: str, change: str, before: int | None, after: int | None, data: str | None) -> None:
        scope = self.scope_of(key) if self.scope_of else None
        self._journal.append((self.run_id, self.now, self.entity, key, change, scope, before, after, data))
        if len(self._journal) >= BATCH:
            self._flush_journal()

    def _flush_inserts(self) -> None:
        bulk_insert(self.conn, self.table.name, self.insert_columns, self._inserts)
        self._inserts = []

    def _flush_updates(self) -> None:
        if self._updates:
            self.conn.exec_driver_sql(self._update_sql, self._updates)
            self._updates = []

    def _flush_journal(self) -> None:
        bulk_insert(self.conn, journal.name, JOURNAL_COLUMNS, self._journal)
        self._journal = []
