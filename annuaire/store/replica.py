"""Fronts reading from a PostgreSQL hot-standby replica (`annuaire serve --read-db`).

Why a replica: every front's reads (LDAP index loads and journal polls, FHIR
searches, web pages) then cost the primary nothing, and fronts scale out with
replicas. Its price is a lag: a replica replays the primary's WAL a little
later. The freshness contract (docs/architecture.md, "How fresh each view
is") says no view answers from a state known to be behind without saying so,
so a front watches its replica (`watch`, a thread per process) and its
readiness and FHIR searches refuse while the replica is down, promoted, paused
or more than `LAG_BOUND` seconds behind the primary.

How the lag is measured, without trusting clocks or an idle primary's last
commit time: every `CHECK_EVERY` seconds the primary's WAL position is noted;
the lag is the age of the oldest noted position the replica has not replayed
yet (zero when it has replayed the primary's position of the last check).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque

from sqlalchemy import Engine

from annuaire.errors import DirectoryError, InvalidInput
from annuaire.store.engine import CONNECT_TIMEOUT, Store, connect_args, open_store
from annuaire.store.url import normalise_url

LAG_BOUND = 5.0  # seconds a replica may be behind the primary before a front stops serving from it
CHECK_EVERY = 0.5  # seconds between two looks at the replica


def check(primary_url: str, read_url: str) -> None:
    """Refuse, before anything starts, a `--read-db` that cannot serve as the replica of `--db`:
    not PostgreSQL, unreachable, not a hot standby (a primary), another cluster or database, or a
    schema other than the code's. Reads only."""
    from annuaire.store.opening import check_state, display_url, schema_state

    primary_url, read_url = normalise_url(primary_url), normalise_url(read_url)
    shown, shown_primary = display_url(read_url), display_url(primary_url)
    if not read_url.startswith("postgresql"):
        raise InvalidInput(f"--read-db {shown}: a replica must be a PostgreSQL hot standby, not SQLite")
    if not primary_url.startswith("postgresql"):
        raise InvalidInput(f"--read-db needs a PostgreSQL primary as --db / ANNUAIRE_DB (got {shown_primary}): "
                           "an SQLite store has no replicas")
    replica_facts = _facts(read_url, "--read-db", shown)
    primary_facts = _facts(primary_url, "--db", shown_primary)
    if not replica_facts["in_recovery"]:
        raise InvalidInput(f"--read-db {shown} is not a hot standby (pg_is_in_recovery() is false: a primary?); "
                           f"give a streaming replica of --db {shown_primary}, or leave --read-db out")
    if primary_facts["in_recovery"]:
        raise InvalidInput(f"--db {shown_primary} is a hot standby (read-only): writes need the primary")
    if None not in (replica_facts["system"], primary_facts["system"]) and \
            replica_facts["system"] != primary_facts["system"]:
        raise InvalidInput(f"--read-db {shown} is not a replica of --db {shown_primary}: they are different "
                           "PostgreSQL clusters (pg_control_system().system_identifier differs)")
    if replica_facts["database"] != primary_facts["database"]:
        raise InvalidInput(f"--read-db {shown} names database {replica_facts['database']!r}, --db "
                           f"{shown_primary} names {primary_facts['database']!r}: a replica has the primary's "
                           "databases, name the same one")
    check_state(schema_state(read_url), f"{shown} (--read-db)")


def _facts(url: str, option: str, shown: str) -> dict:
    """What `check` compares of one server; DirectoryError naming the option when it cannot be reached."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    args = connect_args(url)
    try:
        with psycopg.connect(conninfo, **args) as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), current_database()").fetchone()
            assert row is not None  # (one row)
            in_recovery, database = row
            try:
                system = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
            except psycopg.Error:  # not allowed to this role: the other checks remain
                system = None
    except psycopg.errors.ConnectionTimeout:
        within = f"{CONNECT_TIMEOUT} s" if args else "the URL's connect_timeout"
        raise DirectoryError(f"cannot reach {option} {shown}: no answer within {within} (connection timeout); "
                             "nothing was started") from None
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise DirectoryError(f"cannot reach {option} {shown}: {reason}; nothing was started") from None
    return {"in_recovery": bool(in_recovery), "database": database, "system": system and system[0]}


def open_front_store(primary: Store, read_url: str) -> Store:
    """`primary` (already checked by annuaire.store.opening) with `read_url` as its replica."""
    return open_store(primary.url, upgrade=False, read_url=read_url)


# --- while serving ----------------------------------------------------------------------


class Watch:
    """How far the replica of one store is behind its primary, looked at every `interval`."""

    def __init__(self, store: Store, bound: float = LAG_BOUND, interval: float = CHECK_EVERY) -> None:
        assert store.reader is not None, "a store with a replica"
        self.store = store
        self.replica: Engine = store.reader
        self.bound = bound
        self.interval = interval
        self.reason: str | None = "the replica is being checked after a start"
        self.checked_at = 0.0
        # (time, primary WAL position) not replayed yet; bounded: once past the bound, older ones add nothing
        self._noted: deque[tuple[float, int]] = deque(maxlen=1000)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.check()  # a state before the first request
        self._thread = threading.Thread(target=self._run, name="replica-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.store.closed:
            time.sleep(self.interval)
            self.check()

    def unavailable(self) -> str | None:
        """Why the replica must not be served from now (None: within its bound)."""
        age = time.monotonic() - self.checked_at
        if self.checked_at and age > self.bound + self.interval:
            return f"the replica has not answered a check for {age:.0f} s"
        return self.reason

    def check(self) -> None:
        try:
            self.reason = self._measure()
        except Exception as exc:  # noqa: BLE001 - any failure to read either server is a reason
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            self.reason = f"the replica or the primary does not answer ({exc.__class__.__name__}: {first[:200]})"
        self.checked_at = time.monotonic()

    def _measure(self) -> str | None:
        with self.store.engine.connect() as conn:
            primary_at = int(conn.exec_driver_sql(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").scalar_one())
        with self.replica.connect() as conn:
            in_recovery, replayed, paused = conn.exec_driver_sql(
                "SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint,"
                " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END").one()
        now = time.monotonic()
        if not in_recovery:
            self._noted.clear()
            return ("the replica is no longer a hot standby (promoted?): it no longer follows the primary's "
                    "writes")
        replayed = int(replayed or 0)
        if replayed >= primary_at:
            self._noted.clear()
            return None
        self._noted.append((now, primary_at))
        while self._noted and self._noted[0][1] <= replayed:
            self._noted.popleft()
        late = now - self._noted[0][0] if self._noted else 0.0
        missing = f"{primary_at - replayed:,} bytes of the primary's WAL not replayed"
        if paused:
            return f"WAL replay is paused on the replica ({missing})"
        if late > self.bound:
            return f"the replica is {late:.0f} s behind the primary (bound {self.bound:.0f} s; {missing})"
        return None


_WATCHES: weakref.WeakKeyDictionary[Engine, Watch] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def watch(store: Store) -> Watch | None:
    """The watch of this store's replica in this process, started at the first call (None: no replica)."""
    if store.reader is None:
        return None
    with _LOCK:
        found = _WATCHES.get(store.reader)
        if found is None:
            found = _WATCHES[store.reader] = Watch(store)
            found.start()
    return found


def unavailable(store: Store) -> str | None:
    """Why what this store's replica serves must not be relied on now (None: it may, or no replica)."""
    found = watch(store)
    return None if found is None else found.unavailable()
