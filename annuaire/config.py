"""Configuration, read in one place: every environment variable of the directory is read here.

Server settings are the fields of `Settings`, each overridden by
`ANNUAIRE_<FIELD>` (upper case), e.g. `ANNUAIRE_MAX_BODY_BYTES=1000000`. A
value is cast by its field's type, and one that does not cast is a
ConfigError naming the variable: a mistyped number or boolean stops the
program at start-up instead of silently becoming a default. The few
variables that are not server settings (the store URL, secrets and client
options) are read by the functions at the end. Processes a server starts
(HTTP workers, the LDAP process) receive a Settings object, never a changed
os.environ. The table of every variable: docs/architecture.md
("Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from annuaire.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from annuaire.ldap.limits import LdapLimits

PREFIX = "ANNUAIRE_"
DEFAULT_DB_URL = "sqlite:///annuaire.sqlite"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _ldap_limits() -> LdapLimits:
    """Imported lazily: commands such as local-sync start without the LDAP server's modules."""
    from annuaire.ldap.limits import LdapLimits

    return LdapLimits()


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
    ldap_port: int = 3389  # 0 = no plain LDAP listener
    ldaps_port: int = 0
    ldap_base_dn: str = "o=annuaire-sante,c=fr"
    ldap_workers: int = 2
    ldap_refresh: float = 0.5  # seconds between two reads of the journal by each LDAP worker
    # Anti-extraction limits (annuaire.ldap.limits); environment: `name=value,name=value` over the defaults
    ldap_limits: LdapLimits = field(default_factory=_ldap_limits)
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
    fhir_history_days: int = 90  # days a superseded version stays readable (_history, vread)
    # Daily extractions
    extractions_dir: str = "extractions"
    extractions_keep_days: int = 7
    extractions_time: str = "03:00"  # Paris time; "off" = no scheduled generation
    # Secret for signed tokens (FHIR paging links…); generated per store when empty
    secret: str = ""
    # Publication API (issue 3): CA bundle verifying operators' TLS client certificates
    # (empty = tokens only); days without publication after which `annuaire quality` calls a domain stale.
    tls_client_ca: str = ""
    stale_days: int = 30
    # Access log of `annuaire serve` (annuaire.observability.accesslog): "-" = stderr, "off", or a file
    # appended to; format "text" (key=value) or "json" (one object per line).
    access_log: str = "-"
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The defaults, then `ANNUAIRE_<FIELD>` variables, then `overrides` that are not None
        (command-line options). ConfigError names a variable whose value does not cast."""
        env = os.environ if environ is None else environ
        defaults = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(variable(f.name))
            if raw is not None:
                values[f.name] = cast(variable(f.name), raw, getattr(defaults, f.name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.http_port}").rstrip("/")


def variable(name: str) -> str:
    """The environment variable of a setting: `http_port` -> `ANNUAIRE_HTTP_PORT`."""
    return PREFIX + name.upper()


def cast(var: str, raw: str, default: Any) -> Any:
    """`raw` as the type of `default`; ConfigError naming `var` when it is not one."""
    kind = type(default)
    if kind is str:
        return raw
    text = raw.strip()
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{var} must be a boolean ({'/'.join(_TRUE)} or {'/'.join(_FALSE)}), got {raw!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"{var} must be {what}, got {raw!r}") from None
    from annuaire.ldap.limits import LdapLimits

    if kind is LdapLimits:  # name=value,name=value over the defaults
        try:
            return LdapLimits.parse(text.split(","), origin=var)
        except InvalidInput as exc:
            raise ConfigError(exc.message) from None
    raise TypeError(f"no cast for {var} ({kind.__name__})")


def store_url(environ: Mapping[str, str] | None = None) -> str:
    """`ANNUAIRE_DB`, else an SQLite file in the current directory (`--db` wins over both)."""
    return (os.environ if environ is None else environ).get("ANNUAIRE_DB") or DEFAULT_DB_URL


def read_store_url(environ: Mapping[str, str] | None = None) -> str | None:
    """`ANNUAIRE_READ_DB`: the hot-standby replica `annuaire serve` reads from (`--read-db` wins);
    None: the front reads the store itself."""
    return (os.environ if environ is None else environ).get("ANNUAIRE_READ_DB") or None


def national_ldap_password() -> str:
    """`ANNUAIRE_NATIONAL_LDAP_PASSWORD`: `local-sync serve-ldap`'s bind password (a command-line
    argument would show in `ps`)."""
    return os.environ.get("ANNUAIRE_NATIONAL_LDAP_PASSWORD", "")


def operator_server() -> str | None:
    """`ANNUAIRE_SERVER`: the directory `annuaire publish` sends an operator's list to."""
    return os.environ.get("ANNUAIRE_SERVER") or None


def operator_token() -> str:
    """`ANNUAIRE_TOKEN`: the operator's API token for `annuaire publish` (kept out of `ps`)."""
    return os.environ.get("ANNUAIRE_TOKEN", "")


def child_environ(**variables: str) -> dict[str, str]:
    """This process's environment plus `variables` (e.g. ANNUAIRE_DB), for a child process that is a
    program of its own; os.environ itself is never changed."""
    return {**os.environ, **variables}
