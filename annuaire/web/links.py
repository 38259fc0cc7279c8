"""The other ways into the directory, as the pages present them.

The search page is one door; mail clients use the LDAP address book and bulk
users the daily extraction files. The parameters shown come from the running
server's Settings, so that what the page tells a user to type is what the
server actually answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from annuaire.config import Settings

WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True)
class Access:
    host: str
    ldap_enabled: bool
    ldap_port: int
    ldaps_port: int
    starttls: bool
    base_dn: str
    mailboxes_dn: str
    extractions_url: str
    extractions_time: str
    extractions_keep_days: int
    fhir_url: str


def public_host(settings: Settings, request_host: str | None) -> str:
    """The host name clients should use: public_url's, else the bound address, else the request's."""
    if settings.public_url:
        host = urlsplit(settings.public_url).hostname
        if host:
            return host
    if settings.host not in WILDCARD_HOSTS:
        return settings.host
    return request_host or "localhost"


def access(settings: Settings, request_host: str | None, request_base: str = "") -> Access:
    """What the pages tell users to configure, from the Settings the server runs with.

    `ldap_port` 0 means no plain LDAP listener and `ldaps_port` 0 no LDAPS one (LDAPS also
    needs a certificate: without one the LDAP server opens no LDAPS port, and the pages do
    not offer it). With neither, the pages say the address book is off on this server.
    `annuaire serve` puts the ports it actually listens on in its Settings.
    """
    base = (settings.public_url or request_base).rstrip("/")
    tls = bool(settings.tls_cert and settings.tls_key)
    ldap_port = max(settings.ldap_port, 0)
    ldaps_port = max(settings.ldaps_port, 0) if tls else 0
    return Access(
        host=public_host(settings, request_host),
        ldap_enabled=bool(ldap_port or ldaps_port),
        ldap_port=ldap_port,
        ldaps_port=ldaps_port,
        starttls=tls and bool(ldap_port),
        base_dn=settings.ldap_base_dn,
        mailboxes_dn=f"ou=mailboxes,{settings.ldap_base_dn}",
        extractions_url="/extractions/",
        extractions_time=settings.extractions_time,
        extractions_keep_days=settings.extractions_keep_days,
        fhir_url=f"{base}/fhir/v2",
    )
