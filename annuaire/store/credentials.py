"""How the store keeps API secrets: operator tokens (`ann_…`) and FHIR API keys (`ak_…`).

Both are 256-bit random secrets, shown once. Nobody can guess one, so a slow
password hash protects nothing and only hands attackers a way to burn CPU (a
wrong operator token used to cost one scrypt: 8 connections sending wrong
tokens kept ~1.9 cores busy). The store keeps

    hmac-sha256$<64 hex> = HMAC-SHA-256(server key, SHA-256(secret))

- the server key is 32 random bytes in `server_secret` (name "credentials"),
  created by migration 0011 and shared by every process serving the store: the
  hash column alone (a leaked backup of one table) cannot be checked against;
- the inner SHA-256 lets migration 0011 convert the former `sha256:<hex>` API
  key hashes without the keys. Former operator hashes (`scrypt$…`, salted) keep
  working and are replaced by the HMAC form at their next successful use (the
  token itself cannot be recovered, so there is no offline conversion).

Checking a secret costs ~2 µs (measured in docs/publication.md). Expiry dates
are stored instants (exclusive); the last use is recorded at most once a
minute per process and credential, by a background thread, never on the
request's path.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from annuaire.errors import InvalidInput
from annuaire.store.clock import to_stored, utc_now
from annuaire.store.schema import server_secret

log = logging.getLogger(__name__)

SCHEME = "hmac-sha256$"
KEY_NAME = "credentials"
LAST_USE_INTERVAL = 60.0  # seconds between two recordings of one credential's last use (per process)

_keys: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()
_keys_lock = threading.Lock()


def new_key() -> str:
    return secrets.token_hex(32)


def digest(key: bytes, secret: str) -> str:
    """The stored form of `secret`."""
    inner = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()
    return SCHEME + hmac.new(key, inner, hashlib.sha256).hexdigest()


def is_current(stored: str | None) -> bool:
    return bool(stored and stored.startswith(SCHEME))


def matches(key: bytes, secret: str, stored: str) -> bool:
    """`secret` is the one `stored` was made from (constant time)."""
    return is_current(stored) and hmac.compare_digest(digest(key, secret), stored)


def server_key(conn: Connection) -> bytes:
    """The store's credentials key (read once per engine, created if a store lacks it)."""
    engine = conn.engine
    key = _keys.get(engine)
    if key is not None:
        return key
    value = conn.execute(select(server_secret.c.value).where(server_secret.c.name == KEY_NAME)).scalar()
    if value is None:  # not created by the migration (a store restored without it): create it once
        try:
            with engine.begin() as writer:
                writer.execute(insert(server_secret).values(name=KEY_NAME, value=new_key(), created_at=utc_now()))
        except IntegrityError:  # another process created it first
            pass
        with engine.connect() as reader:
            value = reader.execute(select(server_secret.c.value).where(server_secret.c.name == KEY_NAME)).scalar_one()
    key = bytes.fromhex(value)
    with _keys_lock:
        _keys[engine] = key
    return key


def store_key(store) -> bytes:
    """`server_key` read outside any write transaction (creating the key, if ever needed, must
    not wait behind the caller's own write lock on SQLite)."""
    with store.read() as conn:
        return server_key(conn)


# --- expiry -------------------------------------------------------------------------


def parse_expiry(text: str | None, *, now: datetime | None = None) -> str | None:
    """`--expires` as a stored instant: a date means the end of that day (UTC), an instant is
    taken as given (naive = UTC). None or "" = no expiry; a moment already past is refused."""
    if not text:
        return None
    raw = text.strip()
    try:
        if len(raw) == 10:
            moment = datetime.combine(date.fromisoformat(raw) + timedelta(days=1), dtime(0), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(raw)
        stored = to_stored(moment)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"expiry {raw!r} is not a date (2027-12-31) or an ISO 8601 instant "
                           "(2027-12-31T18:00:00+01:00)") from exc
    if stored <= to_stored(now or datetime.now(UTC)):
        raise InvalidInput(f"expiry {raw!r} is already past")
    return stored


def expired(expires_at: str | None, now: str | None = None) -> bool:
    return expires_at is not None and expires_at <= (now or utc_now())


def shown_expiry(expires_at: str | None) -> str:
    """A stored expiry as people read it: the last valid day when it falls at midnight UTC."""
    if not expires_at:
        return "never"
    if expires_at.endswith("T00:00:00.000000Z"):
        return (date.fromisoformat(expires_at[:10]) - timedelta(days=1)).isoformat() + " (end of day, UTC)"
    return expires_at[:19].replace("T", " ") + " UTC"


# --- background writes: last use, hash upgrades ------------------------------------------------


class LastUse:
    """Which credentials' last use is due for recording (at most once per `interval` each)."""

    def __init__(self, interval: float = LAST_USE_INTERVAL) -> None:
        self.interval = interval
        self._recorded: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def due(self, kind: str, ident: int) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._recorded.get((kind, ident))
            if last is not None and now - last < self.interval:
                return False
            if len(self._recorded) > 100_000:
                self._recorded.clear()
            self._recorded[(kind, ident)] = now
            return True


class _Writer:
    """One daemon thread applying small writes off the request path (dropped when overloaded)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Engine, Callable[[Connection], object]]] = queue.Queue(1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, engine: Engine, work: Callable[[Connection], object]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="annuaire-credentials", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait((engine, work))
        except queue.Full:
            log.debug("credential write dropped: the queue is full")

    def _run(self) -> None:
        while True:
            engine, work = self._queue.get()
            try:
                with engine.begin() as conn:
                    work(conn)
            except Exception:
                log.warning("could not record a credential's use", exc_info=True)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every submitted write is applied (tests, commands)."""
        self._queue.join()


writer = _Writer()
