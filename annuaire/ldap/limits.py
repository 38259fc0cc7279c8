"""Limits against bulk extraction, and the counters that enforce them across worker processes.

Per client address (or per bound account) the server keeps, in memory shared
by every worker process (forked from one parent):

- a token bucket of returned entries (`entries_per_minute`), refilled
  continuously; a search that finds the bucket empty is answered
  `adminLimitExceeded`, one that empties it is truncated with the same code;
- the number of open connections (`max_connections_per_address`).

Keys are hashed (crc32) into a fixed table of slots: two addresses that
share a slot share their limits, which only ever makes them stricter.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import time
import zlib
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class LdapLimits:
    min_chars: int = 3  # significant characters on an indexed attribute
    anonymous_size_limit: int = 100
    account_size_limit: int = 1000  # accounts without their own size_limit
    anonymous_paged_cap: int = 500  # total entries of one paged search
    account_paged_cap: int = 20_000
    time_limit: float = 10.0  # seconds, server side
    entries_per_minute: int = 2_000  # per client address, anonymous
    account_entries_per_minute: int = 20_000  # accounts without their own value
    max_connections_per_address: int = 32
    idle_timeout: float = 300.0  # seconds
    max_request_bytes: int = 256 * 1024
    max_paged_searches: int = 4  # open paged searches per connection
    failed_bind_delay: float = 1.0  # seconds before answering invalidCredentials

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "LdapLimits":
        names = {f.name: f.type for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})


MAX_WORKERS = 256


class SharedCounters:
    """Connection counts and entry budgets shared by forked workers (one lock, fixed slots)."""

    def __init__(self, slots: int = 1 << 16) -> None:
        ctx = multiprocessing.get_context("fork")
        self.slots = slots
        self._lock = ctx.Lock()
        self._conns = multiprocessing.RawArray(ctypes.c_int32, slots)
        self._tokens = multiprocessing.RawArray(ctypes.c_double, slots)
        self._stamps = multiprocessing.RawArray(ctypes.c_double, slots)
        # The journal position each worker's index reflects (see `report_position`).
        self._positions = multiprocessing.RawArray(ctypes.c_int64, MAX_WORKERS)
        self.workers = 1

    def start_positions(self, workers: int, position: int) -> None:
        """Before forking: every worker starts from the parent's index."""
        self.workers = max(1, min(workers, MAX_WORKERS))
        for n in range(self.workers):
            self._positions[n] = position

    def report_position(self, worker: int, position: int) -> None:
        self._positions[worker % MAX_WORKERS] = position

    def lowest_position(self) -> int:
        """The journal position every worker's index has reached."""
        return min(self._positions[n] for n in range(self.workers))

    def _slot(self, key: str) -> int:
        return zlib.crc32(key.encode()) % self.slots

    def connect(self, address: str, cap: int) -> bool:
        slot = self._slot(address)
        with self._lock:
            if self._conns[slot] >= cap:
                return False
            self._conns[slot] += 1
            return True

    def disconnect(self, address: str) -> None:
        slot = self._slot(address)
        with self._lock:
            if self._conns[slot] > 0:
                self._conns[slot] -= 1

    def connections(self, address: str) -> int:
        return self._conns[self._slot(address)]

    def _refill(self, slot: int, per_minute: int, now: float) -> float:
        tokens = self._tokens[slot] + (now - self._stamps[slot]) * per_minute / 60.0
        tokens = min(tokens, float(per_minute))
        self._tokens[slot] = tokens
        self._stamps[slot] = now
        return tokens

    def available(self, key: str, per_minute: int) -> int:
        """Entries this key may still receive now."""
        slot = self._slot(key)
        with self._lock:
            return int(self._refill(slot, per_minute, time.monotonic()))

    def consume(self, key: str, per_minute: int, count: int) -> None:
        if count <= 0:
            return
        slot = self._slot(key)
        with self._lock:
            tokens = self._refill(slot, per_minute, time.monotonic())
            self._tokens[slot] = tokens - count

    def seconds_until(self, key: str, per_minute: int, count: int = 1) -> float:
        """How long until `count` entries are available again."""
        slot = self._slot(key)
        with self._lock:
            tokens = self._refill(slot, per_minute, time.monotonic())
        missing = count - tokens
        return max(0.0, missing * 60.0 / per_minute) if per_minute > 0 else float("inf")
