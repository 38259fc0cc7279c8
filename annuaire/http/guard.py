"""Slow and greedy HTTP clients: the limits uvicorn does not enforce by itself.

uvicorn closes an idle keep-alive connection (`timeout_keep_alive`, here
`Settings.http_idle_timeout`, 60 s), but a connection that sends nothing, or a
request line, headers or body a byte at a time, was kept for ever: about 20,000
idle half-requests (the descriptor limit) stopped every HTTP interface. An ASGI
middleware cannot help (the app only sees complete request heads), so this
module subclasses uvicorn's HTTP protocol (httptools, or h11 for TLS client
certificates) and adds, per connection:

- a deadline for each request: its line and headers within
  `http_request_timeout` seconds (10 s) of its first byte, or of the
  connection for its first request; its body within the same delay plus one
  second per `http_body_min_rate` bytes received (500 B/s: a 200 MB
  publication over a normal link never comes near it). Past the deadline the
  client gets `408 Request Timeout` and the connection is closed. Time spent
  while the server itself is not reading (flow control, app busy) does not count;
- a cap on the request line and headers, `http_max_header_bytes` (431);
- a cap on the open connections per client address,
  `http_max_connections_per_address` (64), counted across every worker process
  (annuaire.http.limits): a connection over the cap is answered `429` with
  `Connection: close` on its first request (or closed after 2 s without one);
- a request whose response is complete while its body is still arriving (an
  endpoint that does not read bodies) closes the connection, rather than
  reading and discarding the rest for ever.

The cost is a timer per request (`loop.call_at`, re-armed lazily when a body
extends its deadline), measured at under 2 µs a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from annuaire.config import Settings
from annuaire.errors import InvalidInput, TooManyConnections
from annuaire.http.errors import bare_answer, bare_shape, headers_of
from annuaire.http.limits import Limits, LocalLimits

log = logging.getLogger("annuaire.http")

IDLE, HEAD, BODY = 0, 1, 2
REFUSED_GRACE = 2.0  # seconds a connection over the cap has to send the request it is refused on
START_BYTES = 512  # of a request's head kept to answer a refused request line in its interface's shape


def shown_line(parts: list[bytes]) -> str:
    """A refused request line for a message: at most 100 bytes, those outside printable ASCII as \\xNN."""
    line = b" ".join(parts)[:100]
    return "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in line)


class GuardConfig:
    """What one server's connections share: the limits and the counters."""

    def __init__(self, settings: Settings, limits: Limits) -> None:
        self.timeout = float(settings.http_request_timeout)
        self.min_rate = max(1.0, float(settings.http_body_min_rate))
        self.max_header_bytes = int(settings.http_max_header_bytes)
        self.cap = int(settings.http_max_connections_per_address)
        self.limits = limits
        self._logged: dict[str, float] = {}

    def log_once(self, what: str, message: str, *args: Any) -> None:
        """Log at most once a minute per address and kind (a flood must not flood the log)."""
        now = time.monotonic()
        if now - self._logged.get(what, -120.0) >= 60.0:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[what] = now
            log.warning(message, *args)


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = message.encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def plain_app(status: int, message: str) -> Any:
    """An ASGI app answering `status` with a text message, closing the connection."""
    body = message.encode()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    return app


def refusal_app(cap: int) -> Any:
    """The ASGI app answering every request of a connection over the per-address cap: 429 in the
    shape of the interface asked (annuaire.http.errors: problem+json, FHIR OperationOutcome; plain
    text for the web pages, whose French page needs the app this connection does not reach)."""
    message = (f"too many connections from your address (at most {cap} at once): reuse your connections "
               "or close idle ones, then retry")

    async def app(scope: dict, receive: Any, send: Any) -> None:
        error = TooManyConnections(message, 1.0)
        shape = bare_shape(scope.get("path", ""))
        if shape is not None:
            response = shape(Request(scope), error, 429)
        else:
            response = PlainTextResponse(message, 429, headers=headers_of(error, 429))
        response.headers["connection"] = "close"
        await response(scope, receive, send)

    return app


class _Guard:
    """The mixin: deadlines, header size, connection cap. Subclasses map their parser's events
    onto `_g_begin` (a request starts), `_g_headers_done`, `_g_body(n)` and `_g_done`."""

    guard: GuardConfig  # set on the class built by `guarded_protocol`
    transport: Any
    loop: asyncio.AbstractEventLoop
    cycle: Any
    app: Any
    flow: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with
        g = self.guard
        peer = transport.get_extra_info("peername")
        self._g_address = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        self._g_timer: asyncio.TimerHandle | None = None
        self._g_counted = False
        grace = g.timeout
        if g.cap > 0:
            self._g_counted = g.limits.connect(self._g_address, g.cap)
            if not self._g_counted:
                g.log_once(f"cap {self._g_address}", "HTTP: more than %d connections from %s: refusing the new "
                           "ones (429)", g.cap, self._g_address)
                self.app = refusal_app(g.cap)
                grace = min(g.timeout, REFUSED_GRACE)
        self._g_begin(grace)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._g_counted:
            self._g_counted = False
            self.guard.limits.disconnect(self._g_address)
        self._g_phase = IDLE
        self._g_cancel()
        super().connection_lost(exc)  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with

    # --- the request's phases ------------------------------------------------------------

    def _g_begin(self, timeout: float | None = None) -> None:
        self._g_phase = HEAD
        self._g_head_bytes = 0
        self._g_start = b""
        self._g_deadline = self.loop.time() + (self.guard.timeout if timeout is None else timeout)
        self._g_arm()

    def _g_headers_done(self) -> None:
        self._g_phase = BODY
        self._g_deadline = max(self._g_deadline, self.loop.time() + self.guard.timeout)

    def _g_body(self, size: int) -> None:
        self._g_deadline += size / self.guard.min_rate

    def _g_done(self) -> None:
        self._g_phase = IDLE
        self._g_cancel()

    def _g_arm(self) -> None:
        if self._g_timer is None:
            self._g_timer = self.loop.call_at(self._g_deadline, self._g_check)

    def _g_cancel(self) -> None:
        if self._g_timer is not None:
            self._g_timer.cancel()
            self._g_timer = None

    def _g_responding(self) -> bool:
        """A response is being written on this connection."""
        cycle = self.cycle
        return cycle is not None and cycle.response_started and not cycle.response_complete

    def _g_check(self) -> None:
        self._g_timer = None
        if self._g_phase == IDLE or self.transport.is_closing():
            return
        now = self.loop.time()
        if now < self._g_deadline:
            self._g_arm()  # the body moved the deadline
            return
        if getattr(self.flow, "read_paused", False) or self._g_responding():
            # We are the ones not reading (the app has not consumed what came), or a response to an
            # earlier request is being written: the client is not the slow one.
            self._g_deadline = now + self.guard.timeout
            self._g_arm()
            return
        self._g_expire()

    def _g_expire(self) -> None:
        g = self.guard
        what = "headers" if self._g_phase == HEAD else "body"
        g.log_once(f"slow {self._g_address}", "HTTP: closing a connection from %s: request %s incomplete after "
                   "the allowed delay (%g s, body at least %g B/s)", self._g_address, what, g.timeout, g.min_rate)
        cycle = self.cycle
        if self._g_phase == BODY and cycle is not None and not cycle.response_complete:
            if not cycle.response_started:
                self.transport.write(_raw_response(408, "Request Timeout", "request body incomplete: sent too slowly"))
            cycle.disconnected = True  # the app's receive() says http.disconnect, its sends are dropped
            cycle.message_event.set()
        elif self._g_phase == HEAD and (cycle is None or cycle.response_complete):
            self.transport.write(_raw_response(408, "Request Timeout", "request incomplete: sent too slowly"))
        self._g_phase = IDLE
        self.transport.close()

    def _g_head_overflow(self) -> bool:
        """The request line and headers exceed the cap: 431 and close (True)."""
        if self._g_phase != HEAD or self._g_head_bytes <= self.guard.max_header_bytes or self.transport.is_closing():
            return False
        self.guard.log_once(f"head {self._g_address}", "HTTP: closing a connection from %s: request headers over "
                            "%d bytes", self._g_address, self.guard.max_header_bytes)
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.write(_raw_response(
                431, "Request Header Fields Too Large",
                f"the request line and headers exceed {self.guard.max_header_bytes} bytes"))
        self._g_phase = IDLE
        self._g_cancel()
        self.transport.close()
        return True

    def _g_keep(self, data: bytes) -> None:
        """The first bytes of the request's head: its target, should the parser refuse it."""
        if len(self._g_start) < START_BYTES:
            self._g_start = (self._g_start + data)[:START_BYTES]

    def send_400_response(self, msg: str) -> None:
        """A request the parser refuses (a byte outside ASCII or a space in its target…): 400 in
        the shape of the interface its target names (annuaire.http.errors), else uvicorn's text."""
        line = self._g_start.split(b"\r\n", 1)[0].split(b" ")
        path = line[1].decode("latin-1").partition("?")[0] if len(line) > 1 else ""
        error = InvalidInput(f"invalid HTTP request line '{shown_line(line)}': the target must be ASCII, "
                             "without spaces (percent-encode other bytes)")
        answer = bare_answer(path, error)
        if answer is None or self.transport.is_closing():
            super().send_400_response(msg)  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with
            return
        self.transport.write(answer)
        self.transport.close()

    def on_response_complete(self) -> None:
        body_pending = self._g_phase == BODY
        super().on_response_complete()  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with
        if body_pending and not self.transport.is_closing():
            self.transport.close()  # answered without reading the body: do not read the rest for nothing


class _HttpToolsGuard(_Guard):
    """For uvicorn's httptools protocol: its parser callbacks mark the phases."""

    def data_received(self, data: bytes) -> None:
        if self._g_phase == IDLE:
            self._g_begin()
        if self._g_phase == HEAD:
            self._g_head_bytes += len(data)
            self._g_keep(data)
        super().data_received(data)  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with
        self._g_head_overflow()

    def on_message_begin(self) -> None:
        if self._g_phase == IDLE:  # a pipelined request, in the same data as the previous one
            self._g_begin()
        super().on_message_begin()  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with

    def on_headers_complete(self) -> None:
        self._g_headers_done()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)  # type: ignore[attr-defined,misc]  # url, headers: set by the uvicorn base protocol (untyped)
        if size <= self.guard.max_header_bytes:
            super().on_headers_complete()  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with
            return
        # Arrived in one piece (the streaming case is refused by data_received): answer 431 through
        # uvicorn's own cycle, so that the rest of the request is handled as usual.
        self.guard.log_once(f"head {self._g_address}", "HTTP: refusing a request from %s: headers over %d bytes",
                            self._g_address, self.guard.max_header_bytes)
        app, self.app = self.app, plain_app(431, f"the request line and headers exceed "
                                                 f"{self.guard.max_header_bytes} bytes")
        try:
            super().on_headers_complete()  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with
        finally:
            self.app = app

    def on_body(self, body: bytes) -> None:
        self._g_body(len(body))
        super().on_body(body)  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with

    def on_message_complete(self) -> None:
        self._g_done()
        super().on_message_complete()  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with


class _H11Guard(_Guard):
    """For uvicorn's h11 protocol: the phase is read from h11's state after each chunk."""

    def data_received(self, data: bytes) -> None:
        import h11

        if self._g_phase == IDLE and self.conn.their_state is h11.IDLE:  # type: ignore[attr-defined]  # conn: the h11 protocol's connection (uvicorn base class)
            self._g_begin()
        if self._g_phase == HEAD:
            self._g_head_bytes += len(data)
            self._g_keep(data)
        elif self._g_phase == BODY:
            self._g_body(len(data))
        super().data_received(data)  # type: ignore[misc]  # the uvicorn protocol this mixin is combined with
        self._g_follow()
        self._g_head_overflow()

    def _g_follow(self) -> None:
        import h11

        state = self.conn.their_state  # type: ignore[attr-defined]  # conn: the h11 protocol's connection (uvicorn base class)
        if state is h11.SEND_BODY and self._g_phase == HEAD:
            self._g_headers_done()
        elif state is not h11.IDLE and state is not h11.SEND_BODY and self._g_phase != IDLE:
            self._g_done()  # DONE, MUST_CLOSE, CLOSED, ERROR


def guarded_protocol(base: type[asyncio.Protocol], settings: Settings, limits: Limits) -> type[asyncio.Protocol]:
    """`base` (a uvicorn HTTP protocol class) with the guard, for uvicorn.Config(http=...)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    mixin = _H11Guard if issubclass(base, H11Protocol) else _HttpToolsGuard
    return type(f"Guarded{base.__name__}", (mixin, base), {"guard": GuardConfig(settings, limits)})


def server_options(settings: Settings, limits: Limits | None = None,
                   base: type[asyncio.Protocol] | None = None) -> dict[str, Any]:
    """uvicorn.Config keyword arguments applying the limits of `settings` (module docstring).
    `base`: the HTTP protocol to guard (default uvicorn's auto choice; TLS client certificates
    bring their own, annuaire.mailboxes.tlsident)."""
    if base is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        base = AutoHTTPProtocol
    return {
        "http": guarded_protocol(base, settings, limits if limits is not None else LocalLimits()),
        "timeout_keep_alive": settings.http_idle_timeout,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        # No WebSocket route exists; an upgrade would hand the connection to another protocol,
        # out of the guard's sight (its deadline and its place in the per-address count).
        "ws": "none",
    }
