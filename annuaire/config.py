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
    http_workers: int = 1  # processes serving HTTP (the FHIR rate limit then holds per process)
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
    fhir_rate_limit: float = 17.0
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
