"""The asyncio LDAPv3 server: one protocol object per connection, read-only operations.

Supported: Bind (anonymous, simple with configured accounts), Unbind,
Search (with the paged-results control), Abandon, the StartTLS and Who am I?
extended operations. Every write operation (and compare) is answered
`unwillingToPerform`. A malformed PDU closes that connection only, after a
Notice of Disconnection.

Searches run synchronously in the event loop: the index answers from memory
and every search is bounded by the size, time and budget limits, so a search
never waits for I/O and a slow client cannot hold more than its buffers.

Every answer is charged to the client's network (or bound account) in the
shared extraction ledger (limits.py) before it is sent: entries already
returned to that network within the day are free, new ones count against the
daily allowance and the per-minute burst budget; an answer that would exceed
them is cut before the first entry beyond (`adminLimitExceeded`, with a
French/English explanation). A request left incomplete for `request_timeout`
seconds (a slow or stalled sender) closes its connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from annuaire.ldap import messages as m
from annuaire.ldap.accounts import (
    Account,
    account_dn,
    bind_account_name,
    verify_password,
)
from annuaire.ldap.ber import BerError, encode_int, frame_length, tlv
from annuaire.ldap.directory import Directory, selection
from annuaire.ldap.limits import LdapLimits, SharedCounters, Taken
from annuaire.observability import ldap as observed

log = logging.getLogger("annuaire.ldap")

_INF = 2**31 - 1
_READ_ONLY = "this directory is read-only: {op} is not supported"
FAILED_BINDS = "too many failed binds from {address}; retry later"
_BULK = ("Les besoins en masse sont servis par les fichiers d'extraction quotidiens. / "
         "Bulk needs are served by the daily extraction files.")
DAILY_REFUSAL = (
    "quota journalier atteint : {who_fr} a reçu {used} entrées différentes en 24 h (au plus {allowance} "
    "par jour) ; les entrées déjà reçues restent disponibles, de nouvelles le seront dans {wait}. "
    "Un établissement derrière une même adresse peut demander un compte LDAP avec son propre quota. / "
    "daily allowance reached: {who_en} received {used} distinct entries in 24 h (at most {allowance} a day); "
    "entries already received remain available, new ones again in {wait}. An establishment behind one "
    "address may ask for an LDAP account with its own allowance. " + _BULK
)
MINUTE_REFUSAL = (
    "trop de nouvelles entrées : au plus {rate} nouvelles entrées par minute pour {who_fr} ; réessayez dans "
    "{wait:.0f} s (les entrées déjà reçues restent disponibles). / "
    "too many new entries: at most {rate} new entries per minute for {who_en}; retry in {wait:.0f} s "
    "(entries already received remain available). " + _BULK
)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


@dataclass
class ServerState:
    """What every connection of one worker shares."""

    directory: Directory
    limits: LdapLimits = field(default_factory=LdapLimits)
    counters: SharedCounters = field(default_factory=SharedCounters)
    accounts: dict[str, Account] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    connections: set[LdapConnection] = field(default_factory=set)
    _verified: dict[tuple[str, bytes], str] = field(default_factory=dict)

    def cached_password(self, account: Account, password: bytes) -> bool:
        return self._verified.get((account.name, hashlib.sha256(password).digest())) == account.password_hash

    def check_password(self, account: Account, password: bytes) -> bool:
        cache_key = (account.name, hashlib.sha256(password).digest())
        if self._verified.get(cache_key) == account.password_hash:
            return True
        ok = verify_password(password, account.password_hash)
        if ok:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified[cache_key] = account.password_hash
        return ok


@dataclass
class PagedState:
    refs: list
    more: bool
    position: int = 0
    base: str = ""


class LdapConnection(asyncio.Protocol):
    def __init__(self, state: ServerState, *, tls: bool = False) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.address = "?"
        self.counted = False
        self.closing = False
        self.tls = tls
        self.busy = False
        self.write_paused = False
        self.account: Account | None = None
        self.last_activity = time.monotonic()
        self.partial_since: float | None = None  # when the pending incomplete request began
        self.network = "?"
        self.network_tag = 0
        self.refusal_logged = False
        self.paged: OrderedDict[bytes, PagedState] = OrderedDict()

    # --- connection life ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream protocol is given a Transport
        peer = transport.get_extra_info("peername")
        self.address = peer[0] if peer else "unix"
        limits = self.state.limits
        self.network = limits.network(self.address)
        self.network_tag = self.state.counters.tag(f"net:{self.network}")
        if not self.state.counters.connect(self.address, limits.max_connections_per_address):
            observed.connection_refused(self.address)
            self.disconnect(m.UNAVAILABLE, f"too many connections from {self.address} "
                                           f"(at most {limits.max_connections_per_address})")
            return
        self.counted = True
        self.state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.state.connections.discard(self)
        if self.counted:
            self.counted = False
            self.state.counters.disconnect(self.address)
        self.paged.clear()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is not None and not self.closing and not self.busy:
            self.transport.resume_reading()
            self._process()
            self._track_partial()

    def disconnect(self, code: int, message: str) -> None:
        """Notice of Disconnection, then close (what is already queued is still sent)."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        try:
            self.transport.write(m.notice_of_disconnection(code, message))
        except Exception:  # noqa: BLE001 - the peer may already be gone
            pass
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_activity = time.monotonic()
        self.buf += data
        self._process()
        self._track_partial()

    def _track_partial(self) -> None:
        """Note when an incomplete request started (sweep_idle closes it after `request_timeout`)."""
        if not self.buf or self.closing:
            self.partial_since = None
            return
        try:
            complete = frame_length(self.buf, self.state.limits.max_request_bytes) is not None
        except BerError:
            complete = True  # _process closes it
        if complete:
            self.partial_since = None  # whole requests wait for the client to read (or a bind)
        elif self.partial_since is None:
            self.partial_since = time.monotonic()

    def _process(self) -> None:
        max_size = self.state.limits.max_request_bytes
        while not self.closing and not self.busy and not self.write_paused:
            try:
                size = frame_length(self.buf, max_size)
            except BerError as exc:
                self.disconnect(m.PROTOCOL_ERROR, str(exc))
                return
            if size is None:
                return
            pdu = bytes(self.buf[:size])
            del self.buf[:size]
            try:
                msg = m.decode_message(pdu)
            except BerError as exc:
                self.disconnect(m.PROTOCOL_ERROR, f"malformed request: {exc}")
                return
            try:
                self.handle(msg)
            except Exception:
                log.exception("LDAP request from %s failed", self.address)
                self.disconnect(m.UNAVAILABLE, "internal error")
                return

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    # --- operations -------------------------------------------------------------------

    def handle(self, msg: m.LDAPMessage) -> None:
        op = msg.op
        mid = msg.message_id
        if isinstance(op, m.SearchRequest):
            self.search(mid, op, msg.controls)
        elif isinstance(op, m.BindRequest):
            self.bind(mid, op)
        elif isinstance(op, m.UnbindRequest):
            self.closing = True
            if self.transport is not None:
                self.transport.close()
        elif isinstance(op, m.AbandonRequest):
            pass  # searches complete before the next request is read: nothing left to abandon
        elif isinstance(op, m.ExtendedRequest):
            self.extended(mid, op)
        elif isinstance(op, m.WriteRequest):
            result = m.LDAPResult(m.UNWILLING_TO_PERFORM, "", _READ_ONLY.format(op=m.WRITE_NAMES[op.tag]))
            self.send(m.wrap(mid, m.encode_op(m.GenericResponse(op.response_tag, result))))
            observed.answered(self.address, m.WRITE_NAMES[op.tag], result.code, "", time.monotonic())
        else:
            self.disconnect(m.PROTOCOL_ERROR, f"{type(op).__name__} is not a request")

    def _critical_problem(self, controls: list[m.Control], allowed: tuple[str, ...]) -> str | None:
        for c in controls:
            if c.critical and c.oid not in allowed:
                return f"critical control {c.oid} is not supported"
        return None

    def bind(self, mid: int, op: m.BindRequest) -> None:
        started = time.monotonic()

        def answer(code: int, message: str = "") -> None:
            self.send(m.wrap(mid, m.encode_op(m.BindResponse(m.LDAPResult(code, "", message)))))
            observed.answered(self.address, "bind", code, message, started, dn=op.name)  # never the password

        self.paged.clear()
        self.account = None
        if op.version != 3:
            return answer(m.PROTOCOL_ERROR, "only LDAP version 3 is supported")
        if op.simple is None:
            return answer(m.AUTH_METHOD_NOT_SUPPORTED, "SASL is not supported; use a simple bind")
        if not op.name and not op.simple:
            return answer(m.SUCCESS)
        if not op.simple:
            return answer(m.UNWILLING_TO_PERFORM, "unauthenticated bind (a name without a password) is refused")
        limits = self.state.limits
        key = f"bind:{self.address}"
        if self.state.counters.available(key, limits.failed_binds_per_minute) < 1:
            return answer(m.UNWILLING_TO_PERFORM, FAILED_BINDS.format(address=self.address))
        account = self.state.accounts.get(bind_account_name(op.name, self.state.directory.base_dn))
        if account is not None and self.state.cached_password(account, op.simple):
            self.account = account
            return answer(m.SUCCESS)
        # Password hashing (scrypt) runs in a thread; this connection reads nothing meanwhile.
        self.busy = True
        assert self.transport is not None
        self.transport.pause_reading()
        asyncio.ensure_future(self._finish_bind(account, op, answer))

    async def _finish_bind(self, account: Account | None, op: m.BindRequest, answer) -> None:
        loop = asyncio.get_running_loop()
        ok = False
        if account is not None:
            assert op.simple is not None  # a simple bind (checked by the caller)
            ok = await loop.run_in_executor(None, self.state.check_password, account, op.simple)
        if ok:
            self.account = account
            answer(m.SUCCESS)
        else:
            log.info("failed LDAP bind as %r from %s", op.name, self.address)
            limits = self.state.limits
            self.state.counters.consume(f"bind:{self.address}", limits.failed_binds_per_minute, 1)
            await asyncio.sleep(limits.failed_bind_delay)
            answer(m.INVALID_CREDENTIALS, "invalid credentials")
        self.busy = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()
            self._process()
            self._track_partial()

    def extended(self, mid: int, op: m.ExtendedRequest) -> None:
        started = time.monotonic()

        def answer(code: int, message: str = "", name: str | None = None, value: bytes | None = None) -> None:
            self.send(m.wrap(mid, m.encode_op(m.ExtendedResponse(m.LDAPResult(code, "", message), name, value))))
            observed.answered(self.address, "extended", code, message, started, name=op.name)

        if op.name == m.OID_START_TLS:
            if self.state.ssl_context is None:
                return answer(m.UNAVAILABLE, "TLS is not configured on this server", op.name)
            if self.tls:
                return answer(m.OPERATIONS_ERROR, "TLS is already active", op.name)
            if self.buf:
                return self.disconnect(m.PROTOCOL_ERROR, "requests sent after StartTLS before its response")
            self.busy = True
            assert self.transport is not None
            self.transport.pause_reading()
            answer(m.SUCCESS, "", op.name)
            asyncio.ensure_future(self._start_tls())
            return
        if op.name == m.OID_WHO_AM_I:
            who = b"" if self.account is None else \
                f"dn:{account_dn(self.account.name, self.state.directory.base_dn)}".encode()
            return answer(m.SUCCESS, "", None, who)
        answer(m.PROTOCOL_ERROR, f"extended operation {op.name} is not supported")

    async def _start_tls(self) -> None:
        loop = asyncio.get_running_loop()
        old = self.transport
        assert old is not None and self.state.ssl_context is not None
        try:
            new = await loop.start_tls(old, self, self.state.ssl_context, server_side=True,
                                       ssl_handshake_timeout=30)
        except Exception as exc:  # noqa: BLE001 - a failed handshake closes this connection
            log.info("StartTLS handshake with %s failed: %s", self.address, exc)
            old.abort()
            return
        if new is None:
            old.abort()
            return
        self.transport = new
        self.tls = True
        self.busy = False
        self.last_activity = time.monotonic()
        # Requests may have arrived (and been buffered) before this coroutine resumed.
        self._process()
        self._track_partial()

    # --- search --------------------------------------------------------------------------

    def begin_search(self, mid: int, controls: list[m.Control], req: m.SearchRequest | None = None,
                     started: float = 0.0) -> tuple[bytes, Callable[..., None], Any] | None:
        """(encoded message id, the SearchResultDone sender, the paged-results control or None)
        of a search; None when its controls were refused (the refusal is sent). With `req`, each
        answer is observed (metrics, access log) as a search that began at `started`."""
        mid_tlv = encode_int(mid)

        def done(code: int, message: str = "", matched: str = "", controls_bytes: bytes = b"",
                 parts: list[bytes] | None = None) -> None:
            op = m.encode_op(m.SearchResultDone(m.LDAPResult(code, matched, message)))
            out = parts if parts is not None else []
            entries = len(out)
            out.append(tlv(0x30, mid_tlv + op + controls_bytes))
            self.send(b"".join(out))
            if req is not None:
                observed.answered(self.address, "search", code, message, started,
                                  self.account.name if self.account else None, req, entries=entries)

        problem = self._critical_problem(controls, (m.OID_PAGED_RESULTS,))
        if problem:
            done(m.UNAVAILABLE_CRITICAL_EXTENSION, problem)
            return None
        paged = None
        for c in controls:
            if c.oid == m.OID_PAGED_RESULTS:
                try:
                    paged = m.decode_paged_control(c.value)
                except BerError as exc:
                    done(m.PROTOCOL_ERROR, f"invalid paged results control: {exc}")
                    return None
        return mid_tlv, done, paged

    def _charging(self) -> tuple[bool, int, int, str, int, str, str]:
        """(account?, ledger tag, daily allowance, burst key, burst rate, who in French, who in English)."""
        limits = self.state.limits
        published = self.state.directory.index.live
        account = self.account
        if account is None:
            return (False, self.network_tag, limits.daily_allowance(published), f"ip:{self.address}",
                    limits.entries_per_minute, f"le réseau {self.network}", f"network {self.network}")
        allowance = account.daily_allowance or limits.daily_allowance(published, limits.account_daily_share)
        return (True, self.state.counters.tag(f"account:{account.name}"), allowance, f"account:{account.name}",
                account.entries_per_minute or limits.account_entries_per_minute,
                f"le compte {account.name}", f"account {account.name}")

    def charge(self, refs: list) -> tuple[list, str | None]:
        """The refs that may be sent (a prefix of `refs`) and, when cut short, why (the diagnostic)."""
        directory = self.state.directory
        hashes: list[int] = []
        positions: list[int] = []
        for pos, ref in enumerate(refs):
            h = directory.entry_hash(ref)
            if h is not None:
                hashes.append(h)
                positions.append(pos)
        if not hashes:
            return refs, None
        counters = self.state.counters
        account, tag, allowance, burst_key, rate, who_fr, who_en = self._charging()
        taken: Taken = counters.take(account=account, key_tag=tag, hashes=hashes,
                                     allowance=allowance, burst_key=burst_key, per_minute=rate)
        if taken.reason is None:
            return refs, None
        if taken.reason == "day":
            message = DAILY_REFUSAL.format(who_fr=who_fr, who_en=who_en, used=taken.used, allowance=allowance,
                                           wait=_duration(taken.wait))
            if not self.refusal_logged:
                self.refusal_logged = True
                log.info("LDAP daily allowance of %s reached (%d distinct entries; %s)", who_en, taken.used,
                         self.address)
        else:
            message = MINUTE_REFUSAL.format(who_fr=who_fr, who_en=who_en, rate=rate, wait=max(1.0, taken.wait))
        return refs[:positions[taken.cut]], message

    def search(self, mid: int, req: m.SearchRequest, controls: list[m.Control]) -> None:
        started = time.monotonic()
        begun = self.begin_search(mid, controls, req, started)
        if begun is None:
            return
        mid_tlv, done, paged = begun
        limits = self.state.limits
        account = self.account
        if account is None:
            size_cap, paged_cap = limits.anonymous_size_limit, limits.anonymous_paged_cap
        else:
            size_cap = account.size_limit or limits.account_size_limit
            paged_cap = max(size_cap, limits.account_paged_cap)
        deadline = started + min(req.time_limit or _INF, limits.time_limit)
        directory = self.state.directory
        sel = selection(tuple(req.attributes))
        if paged is not None:
            return self._paged_search(req, paged, mid_tlv, done, paged_cap, deadline, sel)
        size = min(req.size_limit or _INF, size_cap)
        found = directory.collect(req, size, deadline)
        if found.error is not None:
            e = found.error
            return done(e.code, e.message, e.matched_dn)
        refs, refusal = self.charge(found.refs)
        parts = []
        message = directory.message
        types_only = req.types_only
        for ref in refs:
            msg = message(mid_tlv, ref, sel, types_only)
            if msg is not None:
                parts.append(msg)
        if refusal is not None:
            return done(m.ADMIN_LIMIT_EXCEEDED, refusal, parts=parts)
        if found.timed_out:
            return done(m.TIME_LIMIT_EXCEEDED, "time limit exceeded", parts=parts)
        if found.more:
            if size < (req.size_limit or _INF):
                return done(m.SIZE_LIMIT_EXCEEDED,
                            f"at most {size} entries per search for {self._who()}; refine the search", parts=parts)
            return done(m.SIZE_LIMIT_EXCEEDED, "", parts=parts)
        done(m.SUCCESS, directory.freshness_note(), parts=parts)

    def _who(self) -> str:
        return "anonymous users" if self.account is None else f"account {self.account.name}"

    def _paged_search(self, req, paged, mid_tlv, done, paged_cap, deadline, sel) -> None:
        page_size, cookie = paged
        directory = self.state.directory
        if cookie:
            state = self.paged.pop(cookie, None)
            if state is None or state.base != req.base:
                return done(m.UNWILLING_TO_PERFORM, "unknown or expired paged results cookie",
                            controls_bytes=_paged_done(b""))
        else:
            if page_size == 0:
                return done(m.SUCCESS, controls_bytes=_paged_done(b""))
            cap = min(req.size_limit or _INF, paged_cap)
            found = directory.collect(req, cap, deadline)
            if found.error is not None:
                e = found.error
                return done(e.code, e.message, e.matched_dn, controls_bytes=_paged_done(b""))
            if found.timed_out:
                return done(m.TIME_LIMIT_EXCEEDED, "time limit exceeded", controls_bytes=_paged_done(b""))
            state = PagedState(found.refs, found.more, 0, req.base)
        if page_size == 0:
            return done(m.SUCCESS, controls_bytes=_paged_done(b""))
        chunk = state.refs[state.position:state.position + page_size]
        sent, refusal = self.charge(chunk)
        state.position += len(chunk)
        parts = []
        for ref in sent:
            msg = directory.message(mid_tlv, ref, sel, req.types_only)
            if msg is not None:
                parts.append(msg)
        if refusal is not None:
            return done(m.ADMIN_LIMIT_EXCEEDED, refusal, controls_bytes=_paged_done(b""), parts=parts)
        remaining = len(state.refs) - state.position
        if remaining > 0:
            new_cookie = os.urandom(8)
            self.paged[new_cookie] = state
            while len(self.paged) > self.state.limits.max_paged_searches:
                self.paged.popitem(last=False)
            return done(m.SUCCESS, controls_bytes=_paged_done(new_cookie), parts=parts)
        if state.more:
            limit = min(req.size_limit or _INF, paged_cap)
            message = "" if limit == req.size_limit else \
                f"at most {limit} entries per paged search for {self._who()}; refine the search"
            return done(m.SIZE_LIMIT_EXCEEDED, message, controls_bytes=_paged_done(b""), parts=parts)
        done(m.SUCCESS, directory.freshness_note(), controls_bytes=_paged_done(b""), parts=parts)


def _paged_done(cookie: bytes) -> bytes:
    return m.encode_controls([m.encode_paged_control(0, cookie)])


async def sweep_idle(state: ServerState, interval: float = 1.0) -> None:
    """Close connections idle for longer than the idle timeout, and those whose request stays
    incomplete for longer than the request timeout (slow or stalled senders)."""
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        limit = now - state.limits.idle_timeout
        partial = now - state.limits.request_timeout
        for conn in list(state.connections):
            if conn.closing:
                continue
            if conn.partial_since is not None and conn.partial_since < partial:
                log.info("LDAP client %s closed: request incomplete for more than %.0f s", conn.address,
                         state.limits.request_timeout)
                conn.disconnect(m.PROTOCOL_ERROR, f"request incomplete for more than "
                                                  f"{state.limits.request_timeout:.0f} s")
            elif conn.last_activity < limit:
                conn.disconnect(m.UNAVAILABLE, f"idle for more than {state.limits.idle_timeout:.0f} s")


def make_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx
