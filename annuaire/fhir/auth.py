"""API keys (`ESANTE-API-KEY`) and the per-key rate limit.

Keys are 32 random bytes shown once at creation; the store keeps only their
SHA-256 (a random key of that length needs no slow hash). The server keeps a
copy of the active key hashes for a couple of seconds, so a revocation takes
effect almost at once without a database read per request.

The rate limit is a token bucket per key and per server process (default
`Settings.fhir_rate_limit` requests/s, a key may have its own): with N
worker processes a key gets at most N times its rate; uvicorn spreads
connections across workers, so in practice the limit holds per connection.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from annuaire.errors import Conflict, InvalidInput, NotFound
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.schema import api_key

KEY_PREFIX = "ak_"
CACHE_SECONDS = 2.0


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass
class KeyInfo:
    id: int
    name: str
    rate_limit: int | None
    active: bool
    created_at: str


def add_key(store: Store, name: str, rate_limit: int | None = None) -> str:
    """Create a key named `name`; returns the key (the only time it is visible)."""
    name = name.strip()
    if not name:
        raise InvalidInput("an API key needs a name (the application or organisation using it)")
    if rate_limit is not None and rate_limit <= 0:
        raise InvalidInput(f"rate limit must be a positive number of requests per second, got {rate_limit}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with store.write() as conn:
        if conn.execute(select(api_key.c.id).where(api_key.c.name == name)).first():
            raise Conflict(f"an API key named {name!r} already exists; revoke it first or choose another name")
        conn.execute(insert(api_key).values(
            name=name, key_hash=hash_key(key), rate_limit=rate_limit, active=True, created_at=utc_now()
        ))
    return key


def list_keys(store: Store) -> list[KeyInfo]:
    with store.read() as conn:
        rows = conn.execute(select(api_key).order_by(api_key.c.name)).mappings().all()
    return [KeyInfo(r["id"], r["name"], r["rate_limit"], bool(r["active"]), r["created_at"]) for r in rows]


def revoke_key(store: Store, name: str) -> None:
    with store.write() as conn:
        done = conn.execute(update(api_key).where(api_key.c.name == name).values(active=False)).rowcount
    if not done:
        raise NotFound(f"no API key named {name!r} (see `annuaire apikey list`)")


class KeyRing:
    """Active key hashes, refreshed from the store every CACHE_SECONDS."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._keys: dict[str, tuple[int, int | None]] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def lookup(self, key: str | None) -> tuple[int, int | None] | None:
        """(key id, its rate limit or None) of a valid key, else None."""
        if not key:
            return None
        now = time.monotonic()
        if now - self._loaded > CACHE_SECONDS:
            with self.store.read() as conn:
                rows = conn.execute(
                    select(api_key.c.key_hash, api_key.c.id, api_key.c.rate_limit).where(api_key.c.active)
                ).all()
            with self._lock:
                self._keys = {r.key_hash: (r.id, r.rate_limit) for r in rows}
                self._loaded = now
        return self._keys.get(hash_key(key))


class RateLimiter:
    """Token buckets: `rate` requests per second, bursts up to `rate`."""

    def __init__(self, default_rate: float) -> None:
        self.default_rate = default_rate
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key_id: int, rate: float | None = None) -> bool:
        rate = rate or self.default_rate
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (rate, now))
            tokens = min(rate, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[key_id] = (tokens, now)
                return False
            self._buckets[key_id] = (tokens - 1, now)
            return True
