"""Limits against bulk extraction, and the counters that enforce them across worker processes.

Everything below lives in memory shared by every worker process (forked from
one parent), under one lock:

- per client network (IPv4 /24, IPv6 /64) or per bound account, an
  *extraction ledger*: the distinct entries returned over a sliding day,
  counted against a daily allowance (2 % of the published directory for a
  network). An entry already returned to that network within the day costs
  nothing, so repeated lookups are never refused; a new entry beyond the
  allowance is not returned (`adminLimitExceeded`);
- per client address (or per bound account) a token bucket of *new* entries
  a minute (`entries_per_minute`): a burst limit that repeated autocomplete
  does not consume;
- per client address the number of open connections.

The ledger: a fixed table of slots (one per network or account, two-choice
hashing on a salted hash of the key; a slot whose owner charged nothing for
24 h is taken over). A slot holds 24 hourly counters of new entries (their
sum is what the sliding day used) and a table of remembered entries: 32-bit
cells holding 24 bits of a salted hash of the entry's address and the hour
it was returned, in the less full of its two buckets of 8 cells. The
table has twice as many cells as the daily allowance (rounded up to a power
of two; at most 256 MiB for all networks, 64 MiB for all accounts, unless
`ledger_entries` or `ledger_account_entries` say otherwise); only charged
entries are remembered, so the table is at most half full. A remembered
entry never gives way to a newer one: when both buckets of a new entry are
full of entries of the day (a crowded table: an account whose own allowance
exceeds its table; at half load, two buckets practically never both
overflow), the new entry is charged without being remembered, and charged
again if returned again. So an ordinary client's entries stay free whatever
a harvester on its network does, and no entry is ever given for free by
mistake (save a 24-bit hash collision, under one in a million lookups). A
network whose two slots are both owned by networks active within the day
shares the less used one (more networks than slots): stricter for both, or
at most twice the allowance for the sharer. Memory: `ledger_slots` x cells x
4 bytes, plus the same for accounts, fixed at start and touched only as
slots are used (national directory, 536,002 entries: 1024 x 32,768 cells =
128 MiB for networks, 32 x 131,072 cells = 16 MiB for accounts; about 128
KiB per active network).

Burst and connection keys are hashed (crc32) into a fixed table of slots:
two addresses that share a slot share their limits, which only ever makes
them stricter.
"""

from __future__ import annotations

import ctypes
import hashlib
import ipaddress
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

from annuaire.errors import InvalidInput

WINDOW = 24  # hours of the sliding day
HOUR = 3600.0
BUCKET = 8  # cells per bucket; an entry may be remembered in either of its two buckets
AUTO_BYTES = (256 << 20, 64 << 20)  # at most this much for the networks', the accounts' ledger when sized from the allowance
_MASK64 = (1 << 64) - 1


@dataclass
class LdapLimits:
    min_chars: int = 3  # significant characters on an indexed attribute
    anonymous_size_limit: int = 100
    account_size_limit: int = 1000  # accounts without their own size_limit
    anonymous_paged_cap: int = 500  # total entries of one paged search
    account_paged_cap: int = 20_000
    time_limit: float = 10.0  # seconds, server side
    entries_per_minute: int = 2_000  # NEW entries per client address a minute (burst), anonymous
    account_entries_per_minute: int = 20_000  # accounts without their own value
    daily_share: float = 0.02  # anonymous: distinct entries per network a sliding day, share of the published
    daily_floor: int = 1_000  # ... but at least this many (small directories)
    account_daily_share: float = 0.10  # accounts without their own daily allowance
    network_v4_prefix: int = 24  # an IPv4 client's network (the allowance's unit)
    network_v6_prefix: int = 64  # an IPv6 client's network
    unselective_share: float = 0.30  # a fragment matching more than this share of the entries is too broad
    unselective_floor: int = 1_000  # ... and more than this many entries
    ledger_slots: int = 1024  # networks with a slot of their own at once (fixed shared memory)
    ledger_entries: int = 0  # cells per network slot; 0: twice the daily allowance (power of two, <= 256 MiB in all)
    ledger_account_slots: int = 32
    ledger_account_entries: int = 0  # per account slot; 0: twice the accounts' default allowance (<= 64 MiB)
    max_connections_per_address: int = 32
    idle_timeout: float = 300.0  # seconds
    request_timeout: float = 10.0  # seconds to complete a request once its first bytes arrived
    max_request_bytes: int = 256 * 1024
    max_paged_searches: int = 4  # open paged searches per connection
    failed_bind_delay: float = 1.0  # seconds before answering invalidCredentials
    failed_binds_per_minute: int = 20  # per client address; beyond, binds are refused until it refills

    @classmethod
    def parse(cls, items: Iterable[str], *, base: LdapLimits | None = None, origin: str = "--limit") -> LdapLimits:
        """`name=value` items over `base` (the defaults); InvalidInput naming `origin` (an option or
        an environment variable) on an unknown name or a value of the wrong type."""
        base = base or cls()
        values = {f.name: getattr(base, f.name) for f in fields(cls)}
        for item in (x.strip() for x in items):
            if not item:
                continue
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in values:
                known = ", ".join(values)
                raise InvalidInput(f"{origin}: unknown LDAP limit {name!r}; known limits: {known}")
            kind = type(values[name])
            try:
                values[name] = kind(value.strip())
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise InvalidInput(f"{origin}: LDAP limit {name} must be {what}, got {value!r}") from None
        return cls(**values)

    def daily_allowance(self, published: int, share: float | None = None) -> int:
        """Distinct entries a network (or an account without its own value) may receive a day."""
        return max(self.daily_floor, int((self.daily_share if share is None else share) * published))

    def network(self, address: str) -> str:
        """The network an address is counted in: `192.0.2.0/24`, `2001:db8:1:2::/64`, or the address."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        prefix = self.network_v4_prefix if ip.version == 4 else self.network_v6_prefix
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


MAX_WORKERS = 256


def _pow2(n: int) -> int:
    return 1 << max(4, (max(1, n) - 1).bit_length())


@dataclass
class Taken:
    """What the ledger granted for the entries of one answer."""

    cut: int  # entries that may be sent (a prefix of the answer)
    new: int  # of which new to the network or account (charged)
    used: int  # distinct entries charged over the sliding day, after this answer
    reason: str | None = None  # "day" or "minute" when cut short
    wait: float = 0.0  # seconds until some allowance comes back (when cut short)


class Ledger:
    """Distinct entries returned per network (or account) over a sliding day; see the module docstring.

    Lives in shared memory: create it before forking. Not locked itself (SharedCounters locks).
    """

    def __init__(self, slots: int, entries: int) -> None:
        self.slots = max(1, slots)
        self.size = _pow2(entries)
        self.bmask = self.size // BUCKET - 1
        self._tags = multiprocessing.RawArray(ctypes.c_uint64, self.slots)
        self._last = multiprocessing.RawArray(ctypes.c_int64, self.slots)  # last hour an entry was charged
        self._buckets = multiprocessing.RawArray(ctypes.c_int64, self.slots * WINDOW * 2)  # (hour, count) pairs
        self._total = multiprocessing.RawArray(ctypes.c_int64, self.slots * 2)  # (hour, the window's sum then)
        self._raw = multiprocessing.RawArray(ctypes.c_uint32, self.slots * self.size)
        self.cells = memoryview(self._raw).cast("B").cast("I")

    @property
    def nbytes(self) -> int:
        return ctypes.sizeof(self._raw) + ctypes.sizeof(self._buckets) + 32 * self.slots

    def slot(self, tag: int, hour: int) -> int:
        """The slot of a key (its 64-bit tag): its own, a free or expired one, else the less used one."""
        tag |= 1
        a = tag % self.slots
        b = (tag >> 32) % self.slots
        tags = self._tags
        if tags[a] == tag:
            return a
        if tags[b] == tag:
            return b
        for s in (a, b):
            if tags[s] == 0 or self._last[s] <= hour - WINDOW:
                self._claim(s, tag, hour)
                return s
        return a if self.used(a, hour) <= self.used(b, hour) else b

    def _claim(self, s: int, tag: int, hour: int) -> None:
        self._tags[s] = tag
        self._last[s] = hour
        n = WINDOW * 2
        ctypes.memset(ctypes.addressof(self._buckets) + s * n * 8, 0, n * 8)
        self._total[2 * s] = hour
        self._total[2 * s + 1] = 0
        ctypes.memset(ctypes.addressof(self._raw) + s * self.size * 4, 0, self.size * 4)

    def used(self, s: int, hour: int) -> int:
        """New entries counted in the slot over the sliding day (the sum is kept for the hour)."""
        total = self._total
        if total[2 * s] == hour:
            return total[2 * s + 1]
        b = self._buckets
        base = s * WINDOW * 2
        low = hour - WINDOW
        used = sum(b[base + 2 * i + 1] for i in range(WINDOW) if low < b[base + 2 * i] <= hour)
        total[2 * s] = hour
        total[2 * s + 1] = used
        return used

    def oldest(self, s: int, hour: int) -> int | None:
        """The hour of the oldest counted entries of the window (None when nothing is counted)."""
        b = self._buckets
        base = s * WINDOW * 2
        low = hour - WINDOW
        hours = [b[base + 2 * i] for i in range(WINDOW) if low < b[base + 2 * i] <= hour and b[base + 2 * i + 1]]
        return min(hours) if hours else None

    def charge(self, s: int, hour: int, hashes: list[int], room_day: int, room_minute: int,
               salt: int) -> tuple[int, int, str | None]:
        """Walk `hashes` (`hash()` of each entry's address, in answer order): entries remembered
        within the day are free; new ones are remembered and counted while there is room.
        Returns (cut, new, reason)."""
        cells = self.cells
        base = s * self.size
        cur = hour % 255
        stamp = cur + 1
        fresh = _FRESH[cur]
        new = 0
        cut = len(hashes)
        reason = None
        bmask = self.bmask
        for i, h in enumerate(hashes):
            x = ((h ^ salt) * 0x9E3779B97F4A7C15) & _MASK64
            x ^= x >> 31
            fp = (x >> 40) << 8
            b1 = base + ((x & bmask) << 3)
            c = cells[b1]
            if c and fresh[c & 255] and c & ~255 == fp:
                continue  # the usual hit: first cell
            # Two buckets of 8 cells; the entry goes in the one with more room (free cells:
            # empty, or stamped more than a day ago). Cells are only emptied with their whole
            # slot, so live and stale cells come first in a bucket: an empty cell ends it.
            seen = False
            best, room = -1, 0
            for b in (b1, base + (((x >> 20) & bmask) << 3)):
                free, n = -1, 0
                for p in range(b, b + BUCKET):
                    c = cells[p]
                    if c == 0:
                        if free < 0:
                            free = p
                        n += b + BUCKET - p
                        break
                    if fresh[c & 255]:
                        if c & ~255 == fp:
                            seen = True
                            break
                    else:
                        n += 1
                        if free < 0:
                            free = p
                if seen:
                    break
                if n > room:
                    best, room = free, n
            if seen:
                continue
            if new >= room_day:
                cut, reason = i, "day"
                break
            if new >= room_minute:
                cut, reason = i, "minute"
                break
            new += 1
            if best >= 0:  # else both buckets are full of the day's entries: charged, not remembered
                cells[best] = fp | stamp
        if new:
            buckets = self._buckets
            k = s * WINDOW * 2 + 2 * (hour % WINDOW)
            if buckets[k] != hour:
                buckets[k] = hour
                buckets[k + 1] = 0
            buckets[k + 1] += new
            self._last[s] = hour
            if self._total[2 * s] == hour:  # else the next used() sums the buckets
                self._total[2 * s + 1] += new
        return cut, new, reason


# _FRESH[cur][stamp]: a cell stamped `stamp` (1-255: hour % 255 + 1) is within the window at
# hour `cur` (hour % 255); 0 is an empty cell.
_FRESH = [bytes(1 if s and (cur - s + 1) % 255 < WINDOW else 0 for s in range(256)) for cur in range(255)]


class SharedCounters:
    """Connection counts, burst budgets and extraction ledgers shared by forked workers (one lock)."""

    def __init__(self, slots: int = 1 << 16, limits: LdapLimits | None = None,
                 clock: Callable[[], float] = time.monotonic, published: int = 0) -> None:
        """`published`: the size of the directory at start, which sizes the ledgers' tables
        (twice the daily allowances: a network's remembered entries never need to give way)."""
        ctx = multiprocessing.get_context("fork")
        limits = limits or LdapLimits()
        self.slots = slots
        self.clock = clock
        self._lock = ctx.Lock()
        self._conns = multiprocessing.RawArray(ctypes.c_int32, slots)
        self._tokens = multiprocessing.RawArray(ctypes.c_double, slots)
        self._stamps = multiprocessing.RawArray(ctypes.c_double, slots)
        # The journal position each worker's index reflects (see `report_position`).
        self._positions = multiprocessing.RawArray(ctypes.c_int64, MAX_WORKERS)
        self.workers = 1
        def auto(slots: int, allowance: int, most: int) -> int:
            cap = 1 << max(4, (most // (4 * max(1, slots))).bit_length() - 1)
            return min(_pow2(2 * allowance), cap)

        self.networks = Ledger(limits.ledger_slots, limits.ledger_entries or auto(
            limits.ledger_slots, limits.daily_allowance(published), AUTO_BYTES[0]))
        self.accounts = Ledger(limits.ledger_account_slots, limits.ledger_account_entries or auto(
            limits.ledger_account_slots, limits.daily_allowance(published, limits.account_daily_share), AUTO_BYTES[1]))
        # Hashes are salted per service: which networks share slots, and which entries share
        # remembered cells, cannot be predicted from outside.
        self._secret = os.urandom(16)
        self.salt = int.from_bytes(os.urandom(8), "little") | 1

    def tag(self, key: str) -> int:
        """The 64-bit tag of a ledger key (`net:192.0.2.0/24`, `account:NAME`), the same in every worker."""
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8, key=self._secret).digest(), "little")

    @property
    def ledger_bytes(self) -> int:
        return self.networks.nbytes + self.accounts.nbytes

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

    def recover_lock(self, wait: float = 2.0) -> bool:
        """After a worker died (kill -9): release the lock if it stays held (True), so that the
        other workers do not wait for it for ever. Every critical section lasts microseconds."""
        if self._lock.acquire(timeout=wait):
            self._lock.release()
            return False
        self._lock.release()  # a multiprocessing Lock may be released by any process
        return True

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
            return int(self._refill(slot, per_minute, self.clock()))

    def consume(self, key: str, per_minute: int, count: int) -> None:
        if count <= 0:
            return
        slot = self._slot(key)
        with self._lock:
            tokens = self._refill(slot, per_minute, self.clock())
            self._tokens[slot] = tokens - count

    def take(self, *, account: bool, key_tag: int, hashes: list[int], allowance: int, burst_key: str,
             per_minute: int) -> Taken:
        """Charge the entries of one answer (in answer order) to a
        network (or an account, `account=True`) and to a burst budget; how many may be sent.

        `hashes`: `hash()` of each entry's address (the same in every forked worker; salted and
        mixed here)."""
        ledger = self.accounts if account else self.networks
        burst = self._slot(burst_key)
        with self._lock:
            now = self.clock()
            hour = int(now // HOUR)
            s = ledger.slot(key_tag, hour)
            used = ledger.used(s, hour)
            tokens = self._refill(burst, per_minute, now)
            cut, new, reason = ledger.charge(s, hour, hashes, max(0, allowance - used), max(0, int(tokens)),
                                             self.salt)
            if new:
                self._tokens[burst] = tokens - new
            wait = 0.0
            if reason == "day":
                oldest = ledger.oldest(s, hour)
                wait = (oldest + WINDOW) * HOUR - now if oldest is not None else HOUR
            elif reason == "minute":
                remaining = tokens - new
                wait = max(0.0, 1.0 - remaining) * 60.0 / per_minute if per_minute > 0 else float("inf")
        return Taken(cut, new, used + new, reason, max(0.0, wait))

    def used(self, *, account: bool, key_tag: int) -> int:
        """Distinct entries charged to a network (or account) over the sliding day."""
        ledger = self.accounts if account else self.networks
        with self._lock:
            hour = int(self.clock() // HOUR)
            return ledger.used(ledger.slot(key_tag, hour), hour)
