"""Fixtures of the web tests: the real HTTP app under uvicorn, on a free port, and Chromium."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

import httpx
import pytest
import uvicorn

from annuaire.config import Settings
from annuaire.http.app import create_app
from annuaire.store import Store, open_store
from tests.browser import chromium
from tests.web import world


class ServerThread:
    """uvicorn serving an app in a background thread, on a socket bound to port 0."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Site:
    """A running server over a store holding the fictitious world."""

    url: str
    store: Store
    settings: Settings
    client: httpx.Client

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params or None)


def make_settings() -> Settings:
    return Settings(
        host="127.0.0.1",
        http_port=8080,
        public_url="https://annuaire.exemple.test",
        ldap_port=3389,
        ldap_base_dn="o=annuaire-test,c=fr",
    )


def serve(store: Store, settings: Settings) -> Iterator[Site]:
    with ServerThread(create_app(store, settings)) as server:
        url = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=url, timeout=30) as client:
            yield Site(url, store, settings, client)


@pytest.fixture
def site(store: Store) -> Iterator[Site]:
    """The world on both engines (the `store` fixture is parametrised), served over HTTP."""
    world.build(store)
    yield from serve(store, make_settings())


@pytest.fixture
def sqlite_site(tmp_path) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    """The world on SQLite only: for browser tests, whose subject is the page, not the engine."""
    store = open_store(f"sqlite:///{tmp_path / 'web.sqlite'}")
    world.build(store)
    try:
        yield from serve(store, make_settings())
    finally:
        store.dispose()


# --- Chromium (Debian's, driven by Playwright) ----------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module (tests/browser.py)."""
    yield from chromium()
