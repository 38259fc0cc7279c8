"""Fixtures: a populated store per engine, and the real LDAP server (2 workers) as a subprocess.

The server runs exactly as in production (`python -m annuaire … ldap`,
forked workers sharing the port with SO_REUSEPORT), with LDAPS and StartTLS
on a demo certificate, and is queried by real clients (OpenLDAP's
ldapsearch, ldap3). Helpers live in ldap_support.py, test data in ldap_data.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from ldap_data import World, populate
from ldap_support import LdapServer, drop_store, make_store, start_server, stop_server


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ldap_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    """The real server with 2 workers over a populated store, once per engine."""
    from annuaire.store import open_store

    tmp = tmp_path_factory.mktemp(f"ldap-{request.param}")
    url, dbname = make_store(request.param, tmp)
    store = open_store(url)
    world = populate(store)
    store.dispose()
    server = start_server(url, tmp, world)
    try:
        yield server
    finally:
        stop_server(server)
        drop_store(dbname)


@pytest.fixture(scope="session")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, World]:
    """A populated SQLite store shared by tests that start their own server."""
    from annuaire.store import open_store

    tmp = tmp_path_factory.mktemp("ldap-world")
    url = f"sqlite:///{tmp / 'world.sqlite'}"
    store = open_store(url)
    world = populate(store)
    store.dispose()
    return url, world


