"""The differences between SQLite and PostgreSQL that callers meet, each behind one name.

Modules outside `annuaire.store` never test the engine (tests/store/test_dialect_edges.py
checks it): they ask the question they have (`row_lock`, `relaxed_commit`, …) and get
the same SQL the engine-specific code used to send.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing this module does not load SQLAlchemy (`mailboxes.model` is light)
    from sqlalchemy import Connection, Table
    from sqlalchemy.sql import Insert

POSTGRESQL = "postgresql"

# Short indexed queries (the search page): compiling them, or splitting them over workers,
# costs more than it saves. The store lives on SSD: an index lookup is not 4 times a sequential
# read (measured: the default made "ORG boxes of a département" scan every structure, 220 ms
# instead of 60).
SHORT_QUERY_SETTINGS = (
    "SET LOCAL jit = off",
    "SET LOCAL max_parallel_workers_per_gather = 0",
    "SET LOCAL random_page_cost = 1.1",
)


def name(bind: Any) -> str:
    """The engine's name ("sqlite" or "postgresql") of a Store, Engine, Connection or name."""
    if isinstance(bind, str):
        return bind
    engine = getattr(bind, "engine", None)  # a Store or a Connection
    return (engine if engine is not None else bind).dialect.name


def is_postgresql(bind: Any) -> bool:
    return name(bind) == POSTGRESQL


def row_lock(conn: Connection) -> str:
    """The suffix of a SELECT that locks its rows until commit.

    PostgreSQL locks rows (`FOR UPDATE`); SQLite has no row locks, and needs none:
    a writer holds the whole database from BEGIN IMMEDIATE (`Store.write`).
    """
    return " FOR UPDATE" if is_postgresql(conn) else ""


def lock_rows(conn: Connection, query: Any) -> None:
    """Lock the rows `query` (a SELECT) reads until commit, on PostgreSQL (`FOR UPDATE`).
    SQLite runs nothing: its writer already holds the whole database (see `row_lock`)."""
    if is_postgresql(conn):
        conn.execute(query.with_for_update()).all()


def relaxed_commit(conn: Connection) -> None:
    """Let this transaction's commit return before its WAL record is flushed.

    The durability the store has on SQLite (WAL, synchronous=NORMAL): a machine crash may
    lose the last instant of commits, never part of one. On PostgreSQL a flushed commit costs
    10-60 ms of fsync, which frequent small writers (publications) must not wait on.
    """
    if is_postgresql(conn):
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


@contextmanager
def index_scans(conn: Connection) -> Iterator[None]:
    """Statements run inside read through indexes, whatever PostgreSQL's planner thinks.

    Statistics taken while a table was nearly empty make PostgreSQL scan it whole; SQLite
    has no statistics unless analysed, and prefers indexes anyway.
    """
    if not is_postgresql(conn):
        yield
        return
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    yield
    conn.exec_driver_sql("SET LOCAL enable_seqscan = on")


def tune_short_queries(conn: Connection) -> None:
    """PostgreSQL planner settings for a transaction of short indexed queries, for this
    transaction only (the pooled connection is left as it was). SQLite has no such knobs."""
    if is_postgresql(conn):
        for statement in SHORT_QUERY_SETTINGS:
            conn.exec_driver_sql(statement)


def steers_indexes(bind: Any) -> bool:
    """Whether queries must keep the planner off unselective indexes themselves (`+column`).

    SQLite without statistics prefers any equality index, however unselective; PostgreSQL
    has statistics, and `+column` is not even its syntax.
    """
    return not is_postgresql(bind)


def rereads_lookups(bind: Any) -> bool:
    """Whether reading a lookup's matches costs a visit of the table per match, so that a count
    then a sorted read would pay it twice: PostgreSQL (pg_trgm's GIN index is lossy, each match
    is checked in the table). SQLite answers from FTS5 and covering indexes."""
    return is_postgresql(bind)


def unindexed(conn: Connection, column: str) -> str:
    """`column` in raw SQL, kept off its index on SQLite (`+column`: see `steers_indexes`)."""
    return f"+{column}" if steers_indexes(conn) else column


def insert_ignore(conn: Connection, table: Table, keys: list[str]) -> Insert:
    """INSERT into `table` that skips rows whose `keys` exist (ON CONFLICT DO NOTHING).

    Both engines say it alike, but SQLAlchemy builds it from each dialect's own `insert`.
    """
    if is_postgresql(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API as PostgreSQL's insert
    return insert(table).on_conflict_do_nothing(index_elements=keys)


def binary_cursor(conn: Connection) -> Any:
    """A DB-API cursor of this connection returning blobs as bytes.

    psycopg sends bytea as hex text unless asked for binary results (a national refresh's
    86 MB of fingerprints: 0.8 s instead of 0.2 s); sqlite3 always returns bytes.
    """
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection
    return raw.cursor(binary=True) if is_postgresql(conn) else raw.cursor()


def streaming_cursor(conn: Connection, label: str, size: int) -> Any:
    """A DB-API cursor that fetches its rows `size` at a time in constant memory.

    PostgreSQL sends a whole result unless read through a named, server-side cursor;
    sqlite3 steps through the statement as rows are fetched.
    """
    raw = conn.connection.dbapi_connection
    assert raw is not None
    if not is_postgresql(conn):
        return raw.cursor()
    cursor = raw.cursor(name=label)
    cursor.itersize = size  # type: ignore[attr-defined]  # psycopg's server-side cursor, not in the DB-API protocol
    return cursor


def consistent_reads(conn: Connection) -> Connection:
    """This connection, its next transaction reading one state of the store throughout.

    PostgreSQL's default (READ COMMITTED) takes a new snapshot per statement; SQLite's
    transactions always read one snapshot (WAL).
    """
    if is_postgresql(conn):
        return conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


@contextmanager
def mapped_reads(conn: Connection, size: int) -> Iterator[None]:
    """Reads of this block memory-mapped (up to `size` bytes of the file): on SQLite, a read
    that touches most pages of a large file skips a copy per page. PostgreSQL reads through
    its own shared buffers."""
    if is_postgresql(conn):
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection
    raw.execute(f"PRAGMA mmap_size={size}")
    try:
        yield
    finally:
        raw.execute("PRAGMA mmap_size=0")
