"""A small asyncio LDAP client (our own BER codec) for the national directory.

The one-account endpoint forwards each search of a mail client to the
national LDAP server and merges the answer with the local address book. One
connection per search (bind if an account is configured, search, unbind):
stateless, nothing to keep alive, and the national side's limits apply to
each search exactly as if the client had asked it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlparse

from annuaire.errors import InvalidInput
from annuaire.ldap import messages as m
from annuaire.ldap.ber import BerError, frame_length

MAX_RESPONSE_PDU = 4 * 1024 * 1024


@dataclass
class NationalAnswer:
    entries: list[m.SearchResultEntry] = field(default_factory=list)
    result: m.LDAPResult = field(default_factory=lambda: m.LDAPResult(m.SUCCESS))
    reachable: bool = True


@dataclass
class NationalLdap:
    """Where and how to reach the national directory."""

    host: str
    port: int
    tls: bool = False
    bind_dn: str = ""
    password: str = ""
    timeout: float = 10.0
    ca_file: str = ""  # LDAPS: extra trusted CA (e.g. a test certificate)

    @classmethod
    def from_url(cls, url: str, **options: object) -> NationalLdap:
        parsed = urlparse(url)
        if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
            raise InvalidInput(f"--national {url!r} must be an LDAP URL: ldap://host:port or ldaps://host:port")
        port = parsed.port or (636 if parsed.scheme == "ldaps" else 389)
        return cls(parsed.hostname, port, parsed.scheme == "ldaps", **options)  # type: ignore[arg-type]  # options name the other fields of this dataclass

    @property
    def label(self) -> str:
        return f"{'ldaps' if self.tls else 'ldap'}://{self.host}:{self.port}"

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        return ctx

    async def search(self, request: m.SearchRequest) -> NationalAnswer:
        """Forward one search; an unreachable server gives `reachable=False`, never an exception."""
        try:
            return await asyncio.wait_for(self._search(request), self.timeout)
        except (TimeoutError, OSError, BerError, ConnectionError) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc) or type(exc).__name__
            return NationalAnswer(result=m.LDAPResult(m.UNAVAILABLE, "", f"{self.label}: {reason}"), reachable=False)

    async def _search(self, request: m.SearchRequest) -> NationalAnswer:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl())
        buffer = bytearray()

        async def receive() -> m.LDAPMessage:
            while True:
                size = frame_length(buffer, MAX_RESPONSE_PDU)
                if size is not None:
                    pdu = bytes(buffer[:size])
                    del buffer[:size]
                    return m.decode_message(pdu)
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError("the national server closed the connection")
                buffer.extend(chunk)

        try:
            if self.bind_dn:
                bind = m.BindRequest(3, self.bind_dn, self.password.encode())
                writer.write(m.encode_message(m.LDAPMessage(1, bind)))
                answer = await receive()
                if not isinstance(answer.op, m.BindResponse) or answer.op.result.code != m.SUCCESS:
                    message = answer.op.result.message if isinstance(answer.op, m.BindResponse) else "bad answer"
                    return NationalAnswer(
                        result=m.LDAPResult(m.UNAVAILABLE, "", f"bind to {self.label} as {self.bind_dn} failed: {message}"),
                        reachable=False,
                    )
            writer.write(m.encode_message(m.LDAPMessage(2, request)))
            out = NationalAnswer()
            while True:
                msg = await receive()
                if msg.message_id == 0:  # Notice of Disconnection
                    raise ConnectionError(getattr(msg.op, "result", m.LDAPResult(m.UNAVAILABLE)).message)
                if isinstance(msg.op, m.SearchResultEntry):
                    out.entries.append(msg.op)
                elif isinstance(msg.op, m.SearchResultDone):
                    out.result = msg.op.result
                    return out
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                writer.write(m.encode_message(m.LDAPMessage(3, m.UnbindRequest())))
                writer.close()
