"""API keys (`ESANTE-API-KEY`) and the per-key rate limit.

Keys are 32 random bytes shown once at creation, with an optional expiry
date; the store keeps only their keyed hash (HMAC-SHA-256, see
annuaire.store.credentials: a random key of that length needs no slow hash).
The server keeps a copy of the active key hashes for a couple of seconds, so a
revocation takes effect almost at once without a database read per request.
A key's last use is recorded at most once a minute per server process.

The rate limit is a token bucket per key (default `Settings.fhir_rate_limit`
requests/s, a key may have its own), shared by every worker process of the
server (annuaire.http.limits): with N workers a key still gets its rate, not
N times it.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from annuaire.errors import Conflict, InvalidInput, NotFound
from annuaire.http.limits import Limits, LocalLimits
from annuaire.store import Store, credentials
from annuaire.store.clock import utc_now
from annuaire.store.schema import api_key

KEY_PREFIX = "ak_"
CACHE_SECONDS = 2.0
MAX_KEY_LENGTH = 200  # issued keys are 46 characters; longer ones are not hashed


@dataclass
class KeyInfo:
    id: int
    name: str
    rate_limit: int | None
    active: bool
    created_at: str
    expires_at: str | None = None
    last_used_at: str | None = None


@dataclass(frozen=True)
class Match:
    """A known key: its id, its own rate limit (None = default) and expiry (None = never)."""

    id: int
    rate_limit: int | None
    expires_at: str | None

    @property
    def expired(self) -> bool:
        return credentials.expired(self.expires_at)


def add_key(store: Store, name: str, rate_limit: int | None = None, *, expires: str | None = None) -> str:
    """Create a key named `name`; returns the key (the only time it is visible). `expires`:
    a date (the end of that day, UTC) or an instant after which the key is refused."""
    name = name.strip()
    if not name:
        raise InvalidInput("an API key needs a name (the application or organisation using it)")
    if rate_limit is not None and rate_limit <= 0:
        raise InvalidInput(f"rate limit must be a positive number of requests per second, got {rate_limit}")
    expires_at = credentials.parse_expiry(expires)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    secret = credentials.store_key(store)
    with store.write() as conn:
        if conn.execute(select(api_key.c.id).where(api_key.c.name == name)).first():
            raise Conflict(f"an API key named {name!r} already exists; revoke it first or choose another name")
        conn.execute(insert(api_key).values(
            name=name, key_hash=credentials.digest(secret, key), rate_limit=rate_limit,
            active=True, created_at=utc_now(), expires_at=expires_at,
        ))
    return key


def _info(r) -> KeyInfo:
    return KeyInfo(r["id"], r["name"], r["rate_limit"], bool(r["active"]), r["created_at"], r["expires_at"],
                   r["last_used_at"])


def list_keys(store: Store) -> list[KeyInfo]:
    with store.read() as conn:
        rows = conn.execute(select(api_key).order_by(api_key.c.name)).mappings().all()
    return [_info(r) for r in rows]


def revoke_key(store: Store, name: str) -> KeyInfo:
    """Revoke the key named `name`; returns it as it was (when it was last used)."""
    with store.write() as conn:
        row = conn.execute(select(api_key).where(api_key.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no API key named {name!r} (see `annuaire apikey list`)")
        conn.execute(update(api_key).where(api_key.c.id == row["id"]).values(active=False))
    return _info(row)


class KeyRing:
    """Active key hashes, refreshed from the store every CACHE_SECONDS."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._keys: dict[str, Match] = {}
        # The digests of the keys seen since the last reload: a digest costs more than the rest
        # of the check (a SHA-256 and an HMAC); dropped with the ring every CACHE_SECONDS.
        self._digests: dict[str, str] = {}
        self._secret = b""
        self._loaded = 0.0
        self._lock = threading.Lock()
        self._last_use = credentials.LastUse()

    def lookup(self, key: str | None) -> Match | None:
        """The key's Match (maybe expired: the caller says so), None for an unknown key."""
        if not key or len(key) > MAX_KEY_LENGTH:
            return None
        now = time.monotonic()
        if now - self._loaded > CACHE_SECONDS:
            with self.store.read() as conn:
                secret = credentials.server_key(conn)
                rows = conn.execute(
                    select(api_key.c.key_hash, api_key.c.id, api_key.c.rate_limit, api_key.c.expires_at)
                    .where(api_key.c.active)
                ).all()
            with self._lock:
                self._keys = {r.key_hash: Match(r.id, r.rate_limit, r.expires_at) for r in rows}
                self._secret = secret
                self._digests = {}
                self._loaded = now
        digest = self._digests.get(key)
        if digest is None:
            digest = credentials.digest(self._secret, key)
            if digest in self._keys:  # (only known keys: a flood of wrong ones cannot grow it)
                self._digests[key] = digest
        found = self._keys.get(digest)
        if found is not None and not found.expired and self._last_use.due("api_key", found.id):
            stamp = utc_now()
            credentials.writer.submit(self.store.engine, lambda conn: conn.execute(
                update(api_key).where(api_key.c.id == found.id).values(last_used_at=stamp)))
        return found


class RateLimiter:
    """Token buckets: `rate` requests per second, bursts up to `rate`, in `limits` (shared by
    the worker processes when the server has several)."""

    def __init__(self, default_rate: float, limits: Limits | None = None) -> None:
        self.default_rate = default_rate
        self.limits = limits if limits is not None else LocalLimits()

    def wait(self, key_id: int, rate: float | None = None) -> float:
        """0.0 when the request may go (one token taken), else the seconds until it may."""
        rate = rate or self.default_rate
        return self.limits.take(("fhir-key", key_id), rate, rate)
