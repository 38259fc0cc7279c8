"""Fixtures of the console tests: the console (with the site's pages and the API) served over
HTTP on each engine, with the publication tests' referential and operators alpha and beta."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from annuaire.config import Settings
from annuaire.console import routes as console_routes
from annuaire.console.spool import Spool
from annuaire.mailboxes import api, operators
from annuaire.store import Store
from annuaire.web import routes as web_routes
from tests.mailboxes.mailbox_fixtures import (
    reset_publications,
    running,
    seed_referential,
)
from tests.pg import fresh_store

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    store: Store
    settings: Settings
    url: str
    tokens: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    page = client.get("/operateurs/connexion")
    return client.post("/operateurs/connexion", data={"jeton": token, "csrf": csrf_of(page.text)})


def console_app(store: Store, settings: Settings, spool: Spool) -> Starlette:
    """The console with the API (to check what it published) and the site's pages (stylesheet)."""
    return Starlette(routes=[*api.routes(store, settings), *console_routes.routes(store, settings, spool),
                             *web_routes.routes(store, settings)])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def console_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with fresh_store(request.param, tmp_path_factory.mktemp("console")) as store:
        yield store


@pytest.fixture(scope="module")
def module_site(console_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = Settings(max_body_bytes=64 * 1024, mass_delete_min=2)
    seed_referential(console_store)
    _, alpha = operators.add_operator(console_store, "alpha", ["a.mssante.fr", "b.mssante.fr"])
    _, beta = operators.add_operator(console_store, "beta", ["c.mssante.fr"])
    spool = Spool(tmp_path_factory.mktemp("spool"))
    with running(console_app(console_store, settings, spool)) as url:
        yield Site(console_store, settings, url, {"alpha": alpha, "beta": beta})


@pytest.fixture
def site(module_site: Site) -> Site:
    reset_publications(module_site.store)
    return module_site
