"""The "one account" LDAP endpoint: the local address book AND the national directory.

A mail client configured with ONE directory account queries this server; each
search is answered from the local address book (contacts entered locally and
national contacts kept by the local sync), then forwarded to the national
LDAP server, and the two lists are merged:

- local contacts first, then national entries;
- an address already returned by the local side is not returned again;
- the national side's limits are respected: it receives the search with the
  size limit that is left, and its result code (sizeLimitExceeded,
  adminLimitExceeded, unwillingToPerform…) is passed on;
- when the national server is unreachable, the local results are still
  returned (with a diagnostic message saying so).

It reuses the LDAP server of `annuaire.ldap` (codec, protocol, filters,
index, anti-extraction limits): only the search operation differs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annuaire.ldap import messages as m
from annuaire.ldap.ber import tlv
from annuaire.ldap.directory import Directory, parse_dn, selection
from annuaire.ldap.index import DirectoryIndex
from annuaire.ldap.limits import LdapLimits, SharedCounters
from annuaire.ldap.server import LdapConnection, ServerState, sweep_idle
from annuaire.localsync.contacts import Contact, iter_contacts
from annuaire.localsync.db import LocalBase
from annuaire.localsync.national_ldap import NationalLdap

log = logging.getLogger("annuaire.localsync")

_INF = 2**31 - 1
MAX_INFLIGHT = 8  # concurrent forwarded searches per client connection


def contact_record(c: Contact) -> dict[str, Any]:
    """A local address book contact as a record for `annuaire.ldap.entries.make_entry`."""
    kind = c.bal_type or ("PER" if (c.first_name or c.last_name) else "ORG")
    return {
        "address": c.email, "type": kind, "holder": c.id_nat, "first_name": c.first_name,
        "last_name": c.last_name, "profession_label": c.title, "profession_code": c.profession,
        "structure_name": c.organisation, "service": c.service,
        "description": c.display_name if kind not in ("PER", "CAB") and not c.service else "",
        "street_name": c.street, "addressee": c.extended, "postcode": c.postcode, "commune_label": c.city,
        "phone": c.phone, "dept_code": c.departement, "structure_idnat": c.structure,
    }


def local_records(local_db: Path) -> Iterator[dict[str, Any]]:
    """Every contact of the local address book that has an address (merged pairs once)."""
    with LocalBase.open(local_db, create=False) as base:
        for contact in iter_contacts(base.conn):
            if contact.email:
                yield contact_record(contact)


def build_index(local_db: Path, suffix: str) -> DirectoryIndex:
    return DirectoryIndex.build(local_records(local_db), suffix)


@dataclass
class Proxy:
    """What every connection of the endpoint shares besides the LDAP server state."""

    national: NationalLdap
    national_base: str  # the national naming context
    base_dn: str  # ours

    def to_national(self, dn: str) -> str:
        return _rebase(dn, self.base_dn, self.national_base)

    def from_national(self, dn: str) -> str:
        return _rebase(dn, self.national_base, self.base_dn)


def _rebase(dn: str, old: str, new: str) -> str:
    if old.lower() == new.lower():
        return dn
    if dn.lower().endswith(old.lower()):
        return dn[: len(dn) - len(old)] + new
    return dn


def _paged_done(cookie: bytes) -> bytes:
    return m.encode_controls([m.encode_paged_control(0, cookie)])


class OneAccountConnection(LdapConnection):
    """The server's protocol with a search that merges local and national answers."""

    def __init__(self, state: ServerState, proxy: Proxy, *, tls: bool = False) -> None:
        super().__init__(state, tls=tls)
        self.proxy = proxy
        self.tasks: set[asyncio.Task[None]] = set()
        self.merged_pages: dict[bytes, tuple[list[bytes], str]] = {}

    def _local_only(self, req: m.SearchRequest) -> bool:
        """Root DSE, subschema and the naming context itself: answered by this server."""
        base = parse_dn(req.base)
        if base is None or base == () and req.scope == m.SCOPE_BASE or base == (("cn", "subschema"),):
            return True
        context = parse_dn(self.state.directory.base_dn)
        return base == context and req.scope == m.SCOPE_BASE

    def search(self, mid: int, req: m.SearchRequest, controls: list[m.Control]) -> None:
        if self._local_only(req):
            return super().search(mid, req, controls)
        if len(self.tasks) >= MAX_INFLIGHT:
            op = m.encode_op(m.SearchResultDone(m.LDAPResult(m.BUSY, "", f"more than {MAX_INFLIGHT} searches in progress")))
            return self.send(m.wrap(mid, op))
        task = asyncio.ensure_future(self._merged_search(mid, req, controls))
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("one-account search from %s failed", self.address, exc_info=task.exception())
            self.disconnect(m.UNAVAILABLE, "internal error")

    def connection_lost(self, exc: Exception | None) -> None:
        for task in list(self.tasks):
            task.cancel()
        super().connection_lost(exc)

    async def _merged_search(self, mid: int, req: m.SearchRequest, controls: list[m.Control]) -> None:
        started = time.monotonic()
        begun = self.begin_search(mid, controls)
        if begun is None:
            return
        mid_tlv, done, paged = begun
        if paged is not None and paged[1]:
            return self._next_page(req, paged, done, mid_tlv)
        limits = self.state.limits
        if self.account is None:
            key, rate, size_cap = f"ip:{self.address}", limits.entries_per_minute, limits.anonymous_size_limit
            if paged is not None:
                size_cap = limits.anonymous_paged_cap
        else:
            key = f"account:{self.account.name}"
            rate = self.account.entries_per_minute or limits.account_entries_per_minute
            size_cap = self.account.size_limit or limits.account_size_limit
            if paged is not None:
                size_cap = max(size_cap, limits.account_paged_cap)
        counters = self.state.counters
        budget = counters.available(key, rate)
        if budget <= 0:
            return done(m.ADMIN_LIMIT_EXCEEDED, f"budget of {rate} entries per minute exhausted; retry later")
        size = min(req.size_limit or _INF, size_cap)
        want = min(size, budget)
        deadline = started + min(req.time_limit or _INF, limits.time_limit)
        directory = self.state.directory
        found = directory.collect(req, want, deadline)
        if found.error is not None and found.error.code != m.NO_SUCH_OBJECT:
            e = found.error
            return done(e.code, e.message, e.matched_dn)
        sel = selection(tuple(req.attributes))
        ops: list[bytes] = []
        seen: set[object] = set()
        index = directory.index
        for ref in found.refs:
            op = directory.encode(ref, sel, req.types_only)
            if op is None:
                continue
            ops.append(op)
            if isinstance(ref, int):
                entry = index.entries[ref]
                if entry is not None:
                    seen.add(_key(_entry_dn(entry[1])))
            else:
                seen.add(_key(directory.special[ref][0]))
        code, message, matched = m.SUCCESS, "", ""
        if found.error is not None:  # noSuchObject locally: the national side may know the entry
            code, message, matched = found.error.code, found.error.message, found.error.matched_dn
        left = want - len(ops)
        if left > 0 and not found.more and not found.timed_out:
            forwarded = m.SearchRequest(
                self.proxy.to_national(req.base), req.scope, req.deref,
                0 if left >= _INF else left, req.time_limit, req.types_only, req.filter, list(req.attributes),
            )
            answer = await self.proxy.national.search(forwarded)
            if not answer.reachable:
                log.warning("national directory unreachable: %s", answer.result.message)
                unavailable = f"national directory unavailable ({answer.result.message})"
                if code == m.SUCCESS or ops:
                    code, message, matched = m.SUCCESS, f"local results only: {unavailable}", ""
                else:
                    code, message, matched = m.UNAVAILABLE, unavailable, ""
            else:
                for hit in answer.entries:
                    dn = self.proxy.from_national(hit.dn)
                    same = _key(dn)
                    if same in seen:  # the same address (or entry) already answered locally
                        continue
                    if len(ops) >= want:
                        answer.result = m.LDAPResult(m.SIZE_LIMIT_EXCEEDED)
                        break
                    seen.add(same)
                    ops.append(m.encode_op(m.SearchResultEntry(dn, hit.attributes)))
                national = answer.result
                if national.code == m.SUCCESS:
                    code, message, matched = m.SUCCESS, "", ""
                elif national.code == m.NO_SUCH_OBJECT and code != m.NO_SUCH_OBJECT:
                    pass  # the base is a local entry: nothing to add from the national side
                elif national.code == m.NO_SUCH_OBJECT and ops:
                    code, message, matched = m.SUCCESS, "", ""
                else:
                    code = national.code
                    message = f"national directory: {national.message}" if national.message else ""
                    matched = self.proxy.from_national(national.matched_dn) if national.matched_dn else ""
        elif found.timed_out:
            code, message = m.TIME_LIMIT_EXCEEDED, "time limit exceeded"
        elif found.more or left <= 0:
            if want < size:
                code, message = m.ADMIN_LIMIT_EXCEEDED, f"budget of {rate} entries per minute reached"
            else:
                code = m.SIZE_LIMIT_EXCEEDED
                if size < (req.size_limit or _INF):
                    message = f"at most {size} entries per search; refine the search"
        if self.closing:
            return
        counters.consume(key, rate, len(ops))
        if paged is not None:
            return self._first_page(req, paged[0], ops, code, message, matched, done, mid_tlv)
        done(code, message, matched, parts=[tlv(0x30, mid_tlv + op) for op in ops])

    # --- paged results over the merged list ------------------------------------------------

    def _first_page(self, req, page_size, ops, code, message, matched, done, mid_tlv) -> None:
        if page_size == 0 or len(ops) <= page_size:
            return done(code, message, matched, controls_bytes=_paged_done(b""),
                        parts=[tlv(0x30, mid_tlv + op) for op in ops])
        cookie = os.urandom(8)
        self.merged_pages[cookie] = (ops[page_size:], req.base)
        while len(self.merged_pages) > self.state.limits.max_paged_searches:
            self.merged_pages.pop(next(iter(self.merged_pages)))
        done(m.SUCCESS, controls_bytes=_paged_done(cookie), parts=[tlv(0x30, mid_tlv + op) for op in ops[:page_size]])

    def _next_page(self, req, paged, done, mid_tlv) -> None:
        page_size, cookie = paged
        state = self.merged_pages.pop(cookie, None)
        if state is None or state[1] != req.base:
            return done(m.UNWILLING_TO_PERFORM, "unknown or expired paged results cookie", controls_bytes=_paged_done(b""))
        rest, base = state
        if page_size == 0:
            return done(m.SUCCESS, controls_bytes=_paged_done(b""))
        parts = [tlv(0x30, mid_tlv + op) for op in rest[:page_size]]
        if len(rest) > page_size:
            new_cookie = os.urandom(8)
            self.merged_pages[new_cookie] = (rest[page_size:], base)
            return done(m.SUCCESS, controls_bytes=_paged_done(new_cookie), parts=parts)
        done(m.SUCCESS, controls_bytes=_paged_done(b""), parts=parts)


def _entry_dn(blob: bytes) -> str:
    from annuaire.ldap.entries import entry_dn

    return entry_dn(blob)


def _key(dn: str) -> object:
    """Entries are the same when their normalised DNs are: same address under the same tree."""
    return parse_dn(dn) or dn.lower()


class LocalReloader:
    """Rebuilds the local index when the local base changes (a sync, an added contact)."""

    def __init__(self, local_db: Path, directory: Directory, interval: float = 2.0) -> None:
        self.local_db = local_db
        self.directory = directory
        self.interval = interval
        self.conn = sqlite3.connect(local_db, check_same_thread=False)
        self.version = self._data_version()

    def _data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                version = self._data_version()
                if version != self.version:
                    self.version = version
                    index = await loop.run_in_executor(None, build_index, self.local_db, self.directory.suffix)
                    self.directory.index = index
                    log.info("local address book reloaded: %d contacts", index.live)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reloading the local address book failed; serving the current one")


@dataclass
class OneAccountConfig:
    local_db: Path
    national: NationalLdap
    host: str = "127.0.0.1"
    port: int = 3389  # 0: any free port
    base_dn: str = "o=annuaire-sante,c=fr"
    national_base_dn: str = ""  # default: the same as base_dn
    limits: LdapLimits = field(default_factory=LdapLimits)
    reload_interval: float = 2.0


@dataclass
class OneAccountService:
    server: asyncio.base_events.Server
    state: ServerState
    reloader: LocalReloader
    tasks: list[asyncio.Task[None]]
    port: int

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.server.close()
        for conn in list(self.state.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await self.server.wait_closed()
        self.reloader.conn.close()


async def start_one_account(config: OneAccountConfig) -> OneAccountService:
    """Start the endpoint in the running event loop."""
    loop = asyncio.get_running_loop()
    suffix = f"ou=mailboxes,{config.base_dn}"
    index = await loop.run_in_executor(None, build_index, config.local_db, suffix)
    directory = Directory(index, config.base_dn, min_chars=config.limits.min_chars)
    state = ServerState(directory, config.limits, SharedCounters(slots=1 << 12))
    proxy = Proxy(config.national, config.national_base_dn or config.base_dn, config.base_dn)
    server = await loop.create_server(lambda: OneAccountConnection(state, proxy), config.host, config.port)
    reloader = LocalReloader(config.local_db, directory, config.reload_interval)
    tasks = [asyncio.ensure_future(reloader.run()), asyncio.ensure_future(sweep_idle(state))]
    port = server.sockets[0].getsockname()[1]
    log.info("one-account LDAP endpoint on %s:%d (%d local contacts, national %s)", config.host, port,
             index.live, config.national.label)
    return OneAccountService(server, state, reloader, tasks, port)
