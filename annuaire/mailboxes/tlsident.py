"""Operator identity from a TLS client certificate, under uvicorn.

uvicorn does not put the peer certificate in the ASGI scope, so we give it an
HTTP protocol class that reads the verified certificate from the TLS
transport when the connection is made and adds the ASGI TLS extension
(`scope["extensions"]["tls"]["client_cert_name"]`, the subject DN in RFC 4514
form) to every request of that connection. The server must run with
`ssl_cert_reqs=CERT_OPTIONAL` and the operators' CA (`Settings.tls_client_ca`):
then an operator may present a certificate, and one that does not verify
fails the handshake. Without TLS the API uses tokens only.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from annuaire.config import Settings


def subject_dn(der: bytes) -> str | None:
    """RFC 4514 subject of a DER certificate."""
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return None


class ClientCertProtocol(H11Protocol):
    """uvicorn's h11 protocol plus the client certificate subject in the scope."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        dn = subject_dn(der) if der else None
        if dn is None:
            return
        inner = self.app

        async def app(scope: dict, receive: Any, send: Any) -> None:
            extensions = scope.setdefault("extensions", {})
            extensions["tls"] = {**extensions.get("tls", {}), "client_cert_name": dn}
            await inner(scope, receive, send)

        self.app = app


def client_dn(scope: Mapping[str, Any]) -> str | None:
    """The verified client certificate subject of this request, if any."""
    return ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_name")


def uvicorn_tls_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config: TLS when configured, client certs when a CA is given."""
    if not (settings.tls_cert and settings.tls_key):
        return {}
    options: dict[str, Any] = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
    ca = getattr(settings, "tls_client_ca", "")
    if ca:
        options.update(ssl_ca_certs=ca, ssl_cert_reqs=ssl.CERT_OPTIONAL, http=ClientCertProtocol)
    return options
