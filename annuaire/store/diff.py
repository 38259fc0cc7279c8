"""The diff engine: replace the active content of a table by what is offered.

Used by the writers of directory records: a record offered with the same
digest as the stored active one is left alone (no new version, no journal
entry); a new key is created; a changed one gets version+1; a key not offered
again is deactivated (tombstone). Every change appends one journal row.

Speed, for national files: writes are batched (executemany; COPY on
PostgreSQL); loading an EMPTY table drops its indexes and builds them once at
the end, and journals the creations with one INSERT … SELECT instead of one
row per record from Python. (A writer thread was tried and measured slower:
the driver takes the GIL back for every row, so the two threads convoy.)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table

from annuaire.store import contains
from annuaire.store.schema import journal
from annuaire.store.select import mark, select_in

RECORD_COLUMNS = ("active", "version", "last_updated", "digest")
JOURNAL_COLUMNS = ("run_id", "at", "entity", "key", "change", "scope", "before_digest", "after_digest", "data")
BATCH = 20_000
# `active` of a created record: 1, not True, which both engines store alike. The sqlite3
# module binds a bool through its adapter lookup, 0.33 µs a row (2.4 s of a national import).
ACTIVE = 1


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "deactivated": self.deactivated, "unchanged": self.unchanged}


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: list[tuple], *,
                loading: bool = False) -> None:
    """Insert many rows as fast as the engine allows."""
    if rows:
        with bulk_inserts(conn, table, columns, loading=loading) as write:
            write(rows)


@contextmanager
def bulk_inserts(conn: Connection, table: str, columns: Sequence[str], *,
                 loading: bool = False) -> Iterator[Callable[[Iterable[tuple]], None]]:
    """A function writing rows into `table`, as fast as the engine allows.

    On PostgreSQL the rows stream through one COPY as they are given: the server
    inserts them (and maintains the indexes) in its own process while the caller
    prepares the next ones; the connection runs nothing else until the block ends.
    On SQLite they are inserted when the block ends, and reach the table's trigram
    index at once.

    `loading`: the table is loaded while empty in this transaction (`TableSync.bulk`):
    PostgreSQL writes the rows frozen (the table was truncated in it), SQLite leaves them
    out of its trigram index (suspended: `contains.suspend`).
    """
    if conn.dialect.name == "postgresql":
        with copy_rows(conn.connection.driver_connection, f'"{table}"', columns, freeze=loading) as write:
            yield write
        return
    pending: list[tuple] = []
    yield pending.extend
    if pending:
        with nullcontext() if loading else contains.batched_inserts(conn, table, len(pending)):
            cols = ", ".join(f'"{c}"' for c in columns)
            sql = f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join([mark(conn)] * len(columns))})'
            conn.exec_driver_sql(sql, pending)


@contextmanager
def copy_rows(raw: Any, target: str, columns: Sequence[str], *,
              freeze: bool = False) -> Iterator[Callable[[Iterable[tuple]], None]]:
    """PostgreSQL: a function streaming rows into `target` (a table's name, quoted) through
    one COPY on `raw`, a psycopg connection; the COPY ends with the block.

    In binary format, each value as its column's type (from the catalog) stores it: psycopg
    formats a row of 20 columns in half the time of the text format (0.6 µs less a row,
    5 s of a first national import).

    `freeze`: the rows written frozen and visible to all (the table must have been created
    or truncated in the current transaction): no reader after sets their hint bits, rewriting
    the pages, and the visibility map is set with them: a VACUUM finds nothing to do."""
    cols = ", ".join(f'"{c}"' for c in columns)
    types = dict(raw.execute(
        "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
        (target,)).fetchall())
    options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    with raw.cursor() as cur, cur.copy(f"COPY {target} ({cols}) FROM STDIN ({options})") as copy:
        copy.set_types([types[c] for c in columns])
        write_row = copy.write_row

        def write(rows: Iterable[tuple]) -> None:
            for row in rows:
                write_row(row)

        yield write


def journal_creations(conn: Connection, table: Table, entity: str, key_column: str, run_id: int, now: str) -> None:
    """One INSERT … SELECT journals the records of a table loaded while empty: all creations,
    in the order of their ids. (PostgreSQL: the order of a sequential scan, in which the rows
    of a freshly loaded table lie; ORDER BY would read them through the primary key, 7 %
    slower. SQLite reads a table in the order of its ids.)"""
    m = mark(conn)
    conn.exec_driver_sql(
        f'INSERT INTO "{journal.name}" (run_id, at, entity, "key", change, after_digest) '
        f'SELECT {m}, {m}, {m}, "{key_column}", {m}, digest FROM "{table.name}"',
        (run_id, now, entity, "created"),
    )


@dataclass
class TableSync:
    """One table's diff inside one write transaction.

    `columns` are the data columns (everything but id, the key column and the
    record columns). Callers offer each key at most once per run, then call
    finish().
    """

    conn: Connection
    table: Table
    entity: str
    key_column: str
    columns: Sequence[str]
    run_id: int
    now: str
    track_changes: bool = False  # keep the keys of changed records in `changed`
    # columns computed from the offered values (search keys), only for records written
    derive: Callable[[tuple], tuple] | None = None
    # (column, values): diff only the stored records whose column is in values; the others
    # are neither read nor deactivated (the caller knows they did not change).
    only: tuple[str, Collection] | None = None
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        name = self.table.name
        sql = f'SELECT "{self.key_column}", id, digest, active FROM "{name}"'
        if self.only is None:
            # Straight from the driver's cursor: SQLAlchemy's row objects cost 1.5 µs
            # each, half a minute on a national refresh.
            raw = self.conn.connection.driver_connection
            assert raw is not None  # an open connection
            rows = raw.execute(sql)
        else:
            rows = select_in(self.conn, sql + " WHERE {in}", *self.only)
        self.existing: dict[str, tuple[int, int, bool]] = {k: (i, d, a) for k, i, d, a in rows}
        self.next_id = 1 + (self.conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) FROM "{name}"').scalar() or 0)
        m = mark(self.conn)
        sets = ", ".join(f'"{c}" = {m}' for c in self.columns)
        self._update_sql = (
            f'UPDATE "{name}" SET {sets}, active = {m}, version = version + 1, '
            f"last_updated = {m}, digest = {m} WHERE id = {m}"
        )
        self._deactivate_sql = f'UPDATE "{name}" SET active = {m}, version = version + 1, last_updated = {m} WHERE id = {m}'
        self.insert_columns = ("id", self.key_column, *self.columns, *RECORD_COLUMNS)
        self.changed: list[str] = []
        self._inserts: list[tuple] = []
        self._updates: list[tuple] = []
        self._journal: list[tuple] = []
        # Loading an empty table: indexes (trigram ones too) built once at the end,
        # creations journaled in one statement at the end.
        self.bulk = not self.existing and self.next_id == 1
        self._trigrams: list[contains.Trigram] = []
        if self.bulk:
            for index in self.table.indexes:
                index.drop(self.conn)
            if self.conn.dialect.name == "postgresql":  # (empty: so that COPY may write the rows frozen)
                self.conn.exec_driver_sql(f'TRUNCATE "{name}"')
            self._trigrams = contains.suspend(self.conn, self.table.name)

    def offer(self, key: str, values: tuple, digest: int) -> int:
        """Offer one record; returns its id. Nothing is written if unchanged."""
        prev = self.existing.pop(key, None)
        if prev is not None and prev[2] and prev[1] == digest:
            self.counts.unchanged += 1
            return prev[0]
        if self.derive is not None:
            values = values + self.derive(values)
        if prev is None:
            id_ = self.next_id
            self.next_id += 1
            self._inserts.append((id_, key, *values, ACTIVE, 1, self.now, digest))
            if not self.bulk:
                self._log(key, "created", None, digest)
            self.counts.created += 1
            if self.track_changes:
                self.changed.append(key)
            if len(self._inserts) >= BATCH:
                self._flush_inserts()
            return id_
        id_, old_digest, active = prev
        self._updates.append((*values, True, self.now, digest, id_))
        self._log(key, "updated" if active else "created", old_digest, digest)
        if self.track_changes:
            self.changed.append(key)
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

    def keep(self, keys: Iterable[str]) -> None:
        """Records not offered that must stay as they are (not deactivated by finish)."""
        for key in keys:
            if self.existing.pop(key, None) is not None:
                self.counts.unchanged += 1

    def finish(self) -> Counts:
        """Write what is buffered; tombstone active records that were not offered."""
        self._flush_inserts()
        self._flush_updates()
        rows = []
        for key, (id_, dig, active) in self.existing.items():
            if active:
                rows.append((False, self.now, id_))
                self._log(key, "deleted", dig, None)
                self.counts.deactivated += 1
                if self.track_changes:
                    self.changed.append(key)
        for i in range(0, len(rows), BATCH):
            self.conn.exec_driver_sql(self._deactivate_sql, rows[i : i + BATCH])
        self._flush_journal()
        if self.bulk:
            journal_creations(self.conn, self.table, self.entity, self.key_column, self.run_id, self.now)
            for index in self.table.indexes:
                index.create(self.conn)
            contains.resume(self.conn, self._trigrams)
        self.existing.clear()
        return self.counts

    def _log(self, key: str, change: str, before: int | None, after: int | None) -> None:
        # (the journal's scope and data columns are for the mailbox writers: none here)
        self._journal.append((self.run_id, self.now, self.entity, key, change, None, before, after, None))
        if len(self._journal) >= BATCH:
            self._flush_journal()

    def _flush_inserts(self) -> None:
        rows, self._inserts = self._inserts, []
        if rows:
            bulk_insert(self.conn, self.table.name, self.insert_columns, rows, loading=self.bulk)

    def _flush_updates(self) -> None:
        rows, self._updates = self._updates, []
        if rows:
            self.conn.exec_driver_sql(self._update_sql, rows)

    def _flush_journal(self) -> None:
        rows, self._journal = self._journal, []
        if rows:
            bulk_insert(self.conn, journal.name, JOURNAL_COLUMNS, rows)
