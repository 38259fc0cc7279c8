"""Settings, with defaults that run. Every setting can be overridden by an
environment variable `ANNUAIRE_<NAME>` (upper case), e.g.
`ANNUAIRE_MAX_BODY_BYTES=1000000`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Settings:
    # HTTP server
    host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = ""  # base URL as seen by clients; default http://host:port
    http_workers: int = 1  # processes serving HTTP (rate limits and throttles are shared by all)
    # Slow and greedy HTTP clients (annuaire.http.guard). A request's line and headers must arrive within
    # http_request_timeout seconds of its first byte (of the connection, for its first request); its body
    # within the same delay plus one second per http_body_min_rate bytes. Else: 408 and closed.
    http_request_timeout: float = 10.0
    http_body_min_rate: int = 500  # bytes/s a request body must keep up, on average
    http_idle_timeout: float = 60.0  # an idle keep-alive connection is closed after this many seconds
    http_max_connections_per_address: int = 64  # open connections per client address, all workers; 0 = no cap
    http_max_header_bytes: int = 64 * 1024  # request line + headers (431 beyond)
    # Failed authentications (operator tokens, TLS certificates, FHIR keys) a client address may make per
    # minute, and wrong tokens naming one operator per minute from anywhere; then 429 + Retry-After. 0 = off.
    auth_failures_per_address: int = 20
    auth_failures_per_operator: int = 60
    # LDAP server
    ldap_port: int = 3389
    ldaps_port: int = 0
    ldap_base_dn: str = "o=annuaire-sante,c=fr"
    ldap_workers: int = 2
    tls_cert: str = ""
    tls_key: str = ""
    # Operator publication API
    max_body_bytes: int = 200 * 1024 * 1024
    mass_delete_ratio: float = 0.20
    mass_delete_min: int = 10
    # Referential import: share of the active persons, activities or structures one file may deactivate
    referential_max_deactivation: float = 0.05
    authorised_professions: str = ""  # comma-separated TRE_G15 codes; empty = all
    # FHIR API
    fhir_default_count: int = 50
    fhir_max_count: int = 1000
    fhir_rate_limit: float = 17.0  # requests/s per key (a key may have its own), across all workers
    fhir_max_body_bytes: int = 64 * 1024  # POST <type>/_search form body
    # Daily extractions
    extractions_dir: str = "extractions"
    extractions_keep_days: int = 7
    extractions_time: str = "03:00"
    # Secret for signed tokens (FHIR paging links…); generated per store when empty
    secret: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Publication API (issue 3): CA bundle verifying operators' TLS client certificates
    # (empty = tokens only); days without publication after which `annuaire quality` calls a domain stale.
    tls_client_ca: str = ""
    stale_days: int = 30

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = os.environ.get(f"ANNUAIRE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _convert(raw, type(getattr(cls(), f.name)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.http_port}").rstrip("/")


def _convert(raw: str, kind: type) -> Any:
    if kind is bool:
        return raw.lower() in ("1", "true", "yes", "on")
    return kind(raw)
