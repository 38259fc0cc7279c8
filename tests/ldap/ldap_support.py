"""Helpers of the LDAP tests: stores per engine, the real server as a subprocess, ldapsearch.

The server runs exactly as in production (`python -m annuaire … ldap`,
forked workers sharing the port with SO_REUSEPORT), with LDAPS and StartTLS
on a demo certificate, and is queried by real clients (OpenLDAP's
ldapsearch, ldap3).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st
from ldap_data import World

from annuaire.ldap import messages as m
from tests.ldif import parse_ldif
from tests.pg import create_pg_database, drop_pg_database, skip_or_fail_without_pg
from tests.processes import start_ready, stop

BASE = "o=annuaire-sante,c=fr"
SUFFIX = f"ou=mailboxes,{BASE}"
HAVE_LDAPSEARCH = shutil.which("ldapsearch") is not None


@dataclass
class LdapServer:
    url: str  # store URL
    port: int
    ldaps_port: int | None
    cert: Path
    world: World
    process: subprocess.Popen
    log: Path
    env: dict = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://localhost:{self.ldaps_port}"


def make_store(engine: str, tmp: Path) -> tuple[str, str | None]:
    """A new empty store URL (and the PostgreSQL database name to drop)."""
    if engine == "sqlite":
        return f"sqlite:///{tmp / f'ldap-{uuid.uuid4().hex[:8]}.sqlite'}", None
    skip_or_fail_without_pg()
    return create_pg_database("annuaire_ldap")


def drop_store(name: str | None) -> None:
    if name is not None:
        drop_pg_database(name)


def start_server(url: str, tmp: Path, world: World, *, workers: int = 2, limits: dict | None = None,
                 tls: bool = True) -> LdapServer:
    from annuaire.ldap.tls import demo_certificate

    cert, key = demo_certificate(tmp / "tls")
    ready = tmp / f"ready-{uuid.uuid4().hex[:6]}.json"
    log = tmp / f"server-{uuid.uuid4().hex[:6]}.log"
    args = [sys.executable, "-m", "annuaire", "--db", url, "ldap", "--ldap-port", "auto",
            "--ldap-workers", str(workers), "--ready-file", str(ready)]
    if tls:
        args += ["--ldaps-port", "auto", "--tls-cert", str(cert), "--tls-key", str(key)]
    for name, value in (limits or {}).items():
        args += ["--limit", f"{name}={value}"]
    process, info = start_ready(args, ready, log, env={**os.environ, "ANNUAIRE_LDAP_REFRESH": "0.5"})
    return LdapServer(url, info["port"], info["ldaps_port"], cert, world, process, log)


def stop_server(server: LdapServer) -> None:
    stop(server.process)


# --- ldapsearch ----------------------------------------------------------------------------


@dataclass
class LdapSearchResult:
    rc: int
    entries: list[dict[str, list[str]]]
    stdout: str
    stderr: str

    @property
    def mails(self) -> list[str]:
        return [e["mail"][0] for e in self.entries if "mail" in e]


def ldapsearch(uri: str, filt: str, *attrs: str, base: str = SUFFIX, scope: str = "sub", options: tuple = (),
               env: dict | None = None, timeout: float = 30) -> LdapSearchResult:
    args = ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", uri, "-b", base, "-s", scope, *options,
            filt, *attrs]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return LdapSearchResult(proc.returncode, parse_ldif(proc.stdout), proc.stdout, proc.stderr)


# --- random filters over the test data (hypothesis) ------------------------------------------

FRAGMENTS = ["dup", "dupont", "DUPONTIER", "secret", "jean", "Jean-Pierre", "confidentiel", "dupuytren", "hélène",
             "mar", "martin", "cardio", "medecin", "mssante", "810", "75", "PER", "ORG", "é", "x", "lefèvre"]
ATTRS = ["cn", "sn", "givenName", "mail", "mssIdNatPS", "o", "description", "mssDepartement", "displayName",
         "mssBalType", "objectClass", "unknownAttr"]


@st.composite
def atoms(draw):  # type: ignore[no-untyped-def]
    attr = draw(st.sampled_from(ATTRS))
    frag = draw(st.sampled_from(FRAGMENTS)).encode()
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return m.Equality(attr, frag)
    if kind == 1:
        return m.Substrings(attr, frag, [], None)
    if kind == 2:
        return m.Substrings(attr, None, [frag], None)
    if kind == 3:
        return m.Substrings(attr, None, [], frag)
    if kind == 4:
        other = draw(st.sampled_from(FRAGMENTS)).encode()
        return m.Substrings(attr, frag, [other], None)
    if kind == 5:
        return m.Present(attr)
    if kind == 6:
        return m.Approx(attr, frag)
    return m.GreaterOrEqual(attr, frag)


filters = st.recursive(atoms(), lambda c: st.one_of(st.builds(m.And, st.lists(c, min_size=1, max_size=3)),
                                                    st.builds(m.Or, st.lists(c, min_size=1, max_size=3)),
                                                    st.builds(m.Not, c)), max_leaves=6)
