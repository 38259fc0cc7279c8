"""Counters of the HTTP limits, shared by every worker process of `annuaire serve`.

Three things are counted:

- token buckets: a FHIR key's request rate, failed authentications per
  client address and per operator (`take`, `wait`);
- open connections per client address (`connect`, `disconnect`).

`annuaire serve --http-workers N` starts N *spawned* processes (a clean
interpreter each, annuaire.http.workers), so nothing is inherited: the parent
creates one `SharedLimits` (ctypes arrays in shared memory, and a lock) and
hands it to each worker as a Process argument; the worker `install`s it before
building the app. The limits then hold for the whole server, not per process
(with 2 workers, a key limited to 5 requests/s got 10 before). Costs, measured
on the development machine: a bucket update ~1 µs under the cross-process lock,
a connection check ~1 µs (docs/fhir.md). With one process (`http_workers` 1,
tests) `LocalLimits` keeps the same counters in plain dicts.

Shared slots are fixed in number: integer ids (key, operator) get a slot each
(modulo 16,384), addresses share 65,536 hashed slots (two addresses in one slot
share a budget: rare, and only ever stricter). Connections are counted per
worker (a worker that dies takes its count with it; its replacement starts at
zero) and summed.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from annuaire.errors import TooManyRequests

log = logging.getLogger("annuaire.http")

Key = tuple[str, "int | str"]
ID_NAMESPACES = ("fhir-key", "operator")  # integer ids, one slot each
ID_SLOTS = 1 << 14
HASHED_SLOTS = 1 << 16
CONN_SLOTS = 1 << 14
LOCK_WAIT = 0.5  # seconds; longer means a worker died holding the lock: take it over


class Limits:
    """The interface of both implementations."""

    def take(self, key: Key, rate: float, burst: float) -> float:
        """Consume one token of `key`'s bucket (`rate` per second, at most `burst`): 0.0 when
        there was one, else the seconds until there is one (nothing consumed)."""
        raise NotImplementedError

    def spend(self, key: Key, rate: float, burst: float) -> None:
        """Consume one token even when the bucket is empty (it goes negative: a client that keeps
        failing while throttled stays throttled)."""
        raise NotImplementedError

    def wait(self, key: Key, rate: float, burst: float) -> float:
        """Seconds until `key`'s bucket holds a token (0.0: now), consuming nothing."""
        raise NotImplementedError

    def connect(self, address: str, cap: int) -> bool:
        """Count a new connection from `address`, unless it already has `cap` (False)."""
        raise NotImplementedError

    def disconnect(self, address: str) -> None:
        raise NotImplementedError


def _refill(tokens: float, stamp: float, now: float, rate: float, burst: float) -> float:
    return min(burst, tokens + (now - stamp) * rate)


class LocalLimits(Limits):
    """The counters of one process (no worker processes)."""

    def __init__(self) -> None:
        self._buckets: dict[Key, tuple[float, float]] = {}
        self._conns: dict[str, int] = {}
        self._lock = threading.Lock()

    def _level(self, key: Key, rate: float, burst: float, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (burst, now))
        return _refill(tokens, stamp, now, rate, burst)

    def take(self, key: Key, rate: float, burst: float) -> float:
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, rate, burst, now)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / rate
            if len(self._buckets) > 200_000:  # forget the full ones (they are the default state)
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < burst}
            self._buckets[key] = (tokens - 1, now)
            return 0.0

    def spend(self, key: Key, rate: float, burst: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._buckets[key] = (max(-burst, self._level(key, rate, burst, now) - 1), now)

    def wait(self, key: Key, rate: float, burst: float) -> float:
        with self._lock:
            tokens = self._level(key, rate, burst, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / rate

    def connect(self, address: str, cap: int) -> bool:
        with self._lock:
            count = self._conns.get(address, 0)
            if count >= cap:
                return False
            self._conns[address] = count + 1
            return True

    def disconnect(self, address: str) -> None:
        with self._lock:
            count = self._conns.get(address, 0) - 1
            if count > 0:
                self._conns[address] = count
            else:
                self._conns.pop(address, None)


class SharedLimits(Limits):
    """The counters of all worker processes, in shared memory (created by the parent)."""

    def __init__(self, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.workers = max(1, workers)
        self.worker = 0  # this process's column of connection counts (set by `attach`)
        slots = len(ID_NAMESPACES) * ID_SLOTS + HASHED_SLOTS
        self._tokens = multiprocessing.RawArray(ctypes.c_double, slots)
        self._stamps = multiprocessing.RawArray(ctypes.c_double, slots)  # 0.0 = never used: full
        self._conns = multiprocessing.RawArray(ctypes.c_int32, CONN_SLOTS * self.workers)
        self._lock = ctx.Lock()
        self._thread_lock = threading.Lock()  # not pickled: see __getstate__

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_thread_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()

    def attach(self, worker: int) -> None:
        """In worker `worker`: its connection counts start from zero (a replaced worker's are gone)."""
        self.worker = worker % self.workers
        for slot in range(CONN_SLOTS):
            self._conns[slot * self.workers + self.worker] = 0

    @staticmethod
    def _slot(key: Key) -> int:
        namespace, ident = key
        if isinstance(ident, int) and namespace in ID_NAMESPACES:
            return ID_NAMESPACES.index(namespace) * ID_SLOTS + ident % ID_SLOTS
        return len(ID_NAMESPACES) * ID_SLOTS + zlib.crc32(f"{namespace}|{ident}".encode()) % HASHED_SLOTS

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:  # threads of one worker queue here, not on the semaphore
            if not self._lock.acquire(timeout=LOCK_WAIT):
                log.error("the shared HTTP limits were locked for %.1f s (a worker killed while holding "
                          "them?): taking the lock over", LOCK_WAIT)
                try:
                    self._lock.release()
                except ValueError:
                    pass
                self._lock.acquire(timeout=LOCK_WAIT)
            try:
                yield
            finally:
                try:
                    self._lock.release()
                except ValueError:  # taken over meanwhile by another worker
                    pass

    def _level(self, slot: int, rate: float, burst: float, now: float) -> float:
        stamp = self._stamps[slot]
        if stamp == 0.0:
            return burst
        return _refill(self._tokens[slot], stamp, now, rate, burst)

    def take(self, key: Key, rate: float, burst: float) -> float:
        slot = self._slot(key)
        now = time.monotonic()
        with self._locked():
            tokens = self._level(slot, rate, burst, now)
            taken = tokens >= 1
            self._tokens[slot] = tokens - 1 if taken else tokens
            self._stamps[slot] = now
        return 0.0 if taken else (1 - tokens) / rate

    def spend(self, key: Key, rate: float, burst: float) -> None:
        slot = self._slot(key)
        now = time.monotonic()
        with self._locked():
            self._tokens[slot] = max(-burst, self._level(slot, rate, burst, now) - 1)
            self._stamps[slot] = now

    def wait(self, key: Key, rate: float, burst: float) -> float:
        slot = self._slot(key)
        with self._locked():
            tokens = self._level(slot, rate, burst, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / rate

    def connect(self, address: str, cap: int) -> bool:
        # Each worker writes only its own column, from its event loop: no lock. Two workers
        # accepting from one address at the same instant may let it exceed the cap by one.
        base = (zlib.crc32(address.encode()) % CONN_SLOTS) * self.workers
        if sum(self._conns[base:base + self.workers]) >= cap:
            return False
        self._conns[base + self.worker] += 1
        return True

    def disconnect(self, address: str) -> None:
        at = (zlib.crc32(address.encode()) % CONN_SLOTS) * self.workers + self.worker
        if self._conns[at] > 0:
            self._conns[at] -= 1


_installed: SharedLimits | None = None


def install(limits: SharedLimits, worker: int) -> None:
    """In a worker process, before the app is built: use the server's shared counters."""
    global _installed
    limits.attach(worker)
    _installed = limits


def for_app() -> Limits:
    """The counters an app (or a server) uses: the installed shared ones in a worker process,
    else counters of its own."""
    return _installed if _installed is not None else LocalLimits()


# --- failed authentications -------------------------------------------------------------------


class AuthThrottle:
    """Failed authentications, per client address and per operator, refill per minute.

    `check(address)` before looking at the credentials: an address that has failed
    `per_address` times within the last minute is refused at once (429, no store read, no
    hash), until its budget refills. A failure counts against the address and, for a token
    naming an existing operator, against that operator: an operator whose budget is empty
    still authenticates with its right token (a cheap HMAC), but wrong tokens naming it are
    refused with 429 whatever their address. 0 disables a budget.
    """

    def __init__(self, limits: Limits, interface: str, per_address: int, per_operator: int = 0) -> None:
        self.limits = limits
        self.interface = interface
        self.per_address = per_address
        self.per_operator = per_operator
        self._logged: dict[str, float] = {}

    def _address_key(self, address: str) -> Key:
        return ("auth", f"{self.interface}|{address}")

    def check(self, address: str) -> None:
        if self.per_address <= 0:
            return
        wait = self.limits.wait(self._address_key(address), self.per_address / 60.0, self.per_address)
        if wait > 0:
            self._log(f"address {address}", f"more than {self.per_address} failed authentications a minute "
                      f"from {address}")
            raise TooManyRequests(
                f"too many failed authentications from your address ({self.per_address} a minute); "
                f"retry in {math.ceil(wait)} s with valid credentials", wait)

    def operator_open(self, operator_id: int) -> bool:
        """The operator's budget of failures is not exhausted."""
        if self.per_operator <= 0:
            return True
        return self.limits.wait(("operator", operator_id), self.per_operator / 60.0, self.per_operator) == 0

    def failed(self, address: str, operator_id: int | None = None) -> None:
        """Count a failure; TooManyRequests when it names an operator whose budget is exhausted."""
        if self.per_address > 0:
            self.limits.spend(self._address_key(address), self.per_address / 60.0, self.per_address)
        if operator_id is None or self.per_operator <= 0:
            return
        rate = self.per_operator / 60.0
        wait = self.limits.take(("operator", operator_id), rate, self.per_operator)
        if wait > 0:
            self._log(f"operator {operator_id}", f"more than {self.per_operator} failed authentications a "
                      f"minute naming operator {operator_id} (last from {address})")
            raise TooManyRequests(
                f"too many failed authentications naming this operator ({self.per_operator} a minute); "
                f"retry in {math.ceil(wait)} s with a valid token", wait)

    def _log(self, what: str, message: str) -> None:
        """Logged once a minute per address or operator (an attacker must not flood the log)."""
        now = time.monotonic()
        if now - self._logged.get(what, -120.0) >= 60.0:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[what] = now
            log.warning("%s: %s; refusing (429) until its budget refills", self.interface, message)
