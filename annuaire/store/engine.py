"""Opening the store: SQLite (embedded default) or PostgreSQL; created or migrated only when asked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from annuaire.errors import DirectoryError
from annuaire.store import revisions
from annuaire.store.sqlitedriver import MMAP_BYTES, driver
from annuaire.store.url import default_url, normalise_url

BUSY_TIMEOUT_MS = 60_000
# Seconds to reach a PostgreSQL server (primary or replica): one that never answers (a host gone
# behind a firewall, a stuck proxy) fails the check or request that connects, rather than holding it.
CONNECT_TIMEOUT = 5
# The indexes of a first national import are built once its rows are in: sorted in memory, and the
# trigram GIN indexes of names built in one pass each (the default 64 MB: 5.3 s instead of 2.6 s
# for the last names' index, with psql).
BULK_MAINTENANCE_MEM = "512MB"


@dataclass
class Store:
    """The engine plus what every caller needs to know about it.

    `reader`: a hot-standby replica of the primary (`annuaire serve --read-db`,
    annuaire.store.replica). `read()` and `reading_engine` then read the replica,
    `write()` and `engine` stay on the primary; work that reads what it is about to
    write (publications, the FHIR renderer) takes `primary`, which never reads the
    replica, a little behind.
    """

    engine: Engine
    url: str
    closed: bool = False  # set by dispose()
    created: bool = False  # built by this opening (`open_existing(create=True)`)
    reader: Engine | None = None
    read_url: str | None = None
    _primary: Store | None = field(default=None, repr=False, compare=False)

    @property
    def reading_engine(self) -> Engine:
        """The engine reads go to: the replica when there is one (for followers' snapshots)."""
        return self.reader or self.engine

    @property
    def primary(self) -> Store:
        """This store reading and writing the primary only (itself when it has no replica)."""
        if self.reader is None:
            return self
        if self._primary is None:
            self._primary = Store(engine=self.engine, url=self.url, closed=self.closed)
        return self._primary

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def engine_name(self) -> str:
        """What an operator calls the engine ("SQLite", "PostgreSQL"), for messages."""
        return "SQLite" if self.is_sqlite else "PostgreSQL"

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # The questions callers outside the store ask, rather than which engine this is.

    @property
    def in_process(self) -> bool:
        """Whether the database works inside this process (SQLite): its queries take our CPU,
        and a thread hop costs more than a short one. PostgreSQL works in server processes,
        which Python work (and other connections of ours) may overlap with."""
        return self.is_sqlite

    @property
    def readers_hold_writes(self) -> bool:
        """Whether an open read transaction holds back writers: SQLite's WAL is not checkpointed
        past the oldest reader's snapshot, and grows meanwhile. PostgreSQL's MVCC does not wait."""
        return self.is_sqlite

    @property
    def bulk_writes_block_readers(self) -> bool:
        """Whether a `write(bulk=True)` may keep every other connection from reading the store
        until it commits: SQLite's rollback journal, once pages go to the file. PostgreSQL's
        readers never wait for a writer."""
        return self.is_sqlite

    @property
    def database_file(self) -> str | None:
        """The file holding the database (SQLite), beside which scratch files may go; None when
        the database lives in a server (PostgreSQL), where scratch data are tables."""
        return self.engine.url.database if self.is_sqlite else None

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Connection]:
        """One write transaction, serialised against other writers on SQLite.

        SQLite takes the write lock at BEGIN IMMEDIATE, so two writers queue
        instead of failing half-way with "database is locked".

        `bulk`: gigabytes into a store that holds little yet (the first national
        import). On SQLite, when no other connection has the file open, the
        transaction then writes straight into the database file, its rollback
        journal keeping the few pages it changes: in WAL mode every page would be
        written twice, to the log and then into the file (15 s of a national import).
        On PostgreSQL its index builds get more memory (`BULK_MAINTENANCE_MEM`).
        """
        if bulk and self.is_sqlite:
            self.engine.dispose()  # our own idle connections would keep the file in WAL mode
        with self.engine.connect() as conn:
            journaled = bulk and self.is_sqlite and _journal_mode(conn, "delete", wait=False)
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            try:
                with conn.begin():
                    if bulk and self.is_postgresql:
                        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{BULK_MAINTENANCE_MEM}'")
                    yield conn
            finally:
                if journaled:
                    _journal_mode(conn, "wal")  # (if that fails, the next connection to open asks again)
        if bulk and self.is_sqlite:
            self.engine.dispose()  # its connection may hold a scratch database attached (`firstload`)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.reading_engine.connect() as conn:
            yield conn

    def analyze(self, tables: list[str], *, vacuum: bool = True) -> None:
        """Refresh the planner's statistics after a bulk change of these tables.

        Without them SQLite has no statistics at all. PostgreSQL also vacuums the
        tables: index-only scans need their visibility map. Not after they were loaded
        empty (`vacuum=False`): their rows were written frozen, the map set with them.

        SQLite: nothing. Found on 2026-12-06: the ANALYZE this ran was never committed, so
        SQLite stores have no `sqlite_stat1` and every SQLite plan and benchmark so far was
        made without statistics; taking them changes plans in every view, to be measured
        before (until then this skips the minutes an ANALYZE of national tables takes).
        """
        if not tables or self.is_sqlite:
            return
        # One connection per table, two at a time: each server process takes a core.
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(self._analyze, tables, [vacuum] * len(tables)))

    def _analyze(self, table: str, vacuum: bool) -> None:
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f'{"VACUUM " if vacuum else ""}ANALYZE "{table}"')

    def dispose(self) -> None:
        """Close the connections; background work bound to this store (a FHIR renderer) stops."""
        self.closed = True
        if self._primary is not None:
            self._primary.closed = True
        self.engine.dispose()
        if self.reader is not None:
            self.reader.dispose()


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, module=driver, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own
        # implicit transactions would defeat BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA cache_size=-200000")
        cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # (annuaire.store.sqlitedriver)
        cur.execute("PRAGMA temp_store=MEMORY")
        # Helper threads for SQLite's sorter: index builds of a national import use both cores.
        cur.execute(f"PRAGMA threads={min(4, os.cpu_count() or 1)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # on the driver's connection: through exec_driver_sql, a BEGIN cost more than most searches' queries
        raw = conn.connection.driver_connection
        assert raw is not None  # (an open connection)
        raw.execute(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

    return engine


def _journal_mode(conn: Connection, mode: str, *, wait: bool = True) -> bool:
    """Switch an SQLite file to this journal mode; False when other connections prevent it."""
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection
    if not wait:
        raw.execute("PRAGMA busy_timeout=0")
    try:
        return raw.execute(f"PRAGMA journal_mode={mode}").fetchone()[0] == mode
    except driver.OperationalError:  # "database is locked": in use elsewhere
        return False
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def create_store_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=connect_args(url))

    @event.listens_for(engine, "checkout")
    def _default_access_mode(dbapi_conn, _record, _proxy) -> None:
        # A read-only snapshot (`dialect.consistent_reads`) leaves its connection set to
        # "read write" when returned to the pool, and every later BEGIN would then ask for
        # READ WRITE, which a hot-standby replica refuses (`serve --read-db`): back to the
        # server's default.
        if dbapi_conn.read_only is False:
            dbapi_conn.read_only = None

    return engine


def connect_args(url: str) -> dict[str, Any]:
    """The connection arguments of a PostgreSQL `url`: `CONNECT_TIMEOUT`, unless the URL sets
    its own (`?connect_timeout=N`, then read by libpq)."""
    return {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT}


# (tests building a store at an older revision use Alembic's configuration directly)
_alembic_config = revisions.alembic_config


def open_store(url: str | None = None, *, upgrade: bool = True, read_url: str | None = None) -> Store:
    """Open the store at `url`; `upgrade`: create it, or bring its schema to the code's, silently.
    `read_url`: a hot-standby replica of it, which reads then use (checked beforehand by
    `annuaire.store.replica.check`).

    For programs and tests that own their store. Commands given a store by an operator use
    `annuaire.store.opening.open_existing`, which never creates nor migrates one on its own.
    """
    url = normalise_url(url or default_url())
    try:
        engine = create_store_engine(url)
        if upgrade:
            revisions.upgrade(engine)
        reader = create_store_engine(normalise_url(read_url)) if read_url else None
    except DirectoryError:
        raise
    except Exception as exc:
        raise DirectoryError(f"cannot open the store at {_safe(url)}: {exc}") from exc
    return Store(engine=engine, url=url, reader=reader, read_url=normalise_url(read_url) if read_url else None)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
