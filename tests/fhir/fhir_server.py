"""The real FHIR API served by uvicorn on a free port (in a thread), and the
test databases (a fresh SQLite file or PostgreSQL database per engine)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from annuaire.config import Settings
from annuaire.fhir import auth
from annuaire.fhir.app import routes
from annuaire.http.guard import server_options
from annuaire.store import Store
from tests.pg import create_pg_database, drop_pg_database, skip_or_fail_without_pg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving an app in a thread, on a free port; `options`: more uvicorn.Config
    arguments (those of `annuaire serve`: annuaire.http.guard.server_options)."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the FHIR test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@dataclass
class Api:
    store: Store
    base: str
    key: str
    data: dict[str, Any]

    def client(self, key: str | None = "default") -> httpx.Client:
        headers = {"ESANTE-API-KEY": self.key if key == "default" else key} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        with self.client() as c:
            return c.get(path, **kw)

    def json(self, path: str, **kw: Any) -> dict:
        r = self.get(path, **kw)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/fhir+json;charset=UTF-8"
        return r.json()


def _database(engine: str, tmp: Path) -> Iterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{tmp / 'fhir.sqlite'}"
        return
    skip_or_fail_without_pg()
    url, name = create_pg_database("annuaire_fhir")
    try:
        yield url
    finally:
        drop_pg_database(name)


def serve(store: Store, data: dict[str, Any], settings: Settings | None = None) -> Iterator[Api]:
    settings = settings or Settings(fhir_rate_limit=1000.0)
    key = auth.add_key(store, f"tests-{uuid.uuid4().hex[:6]}")
    # the HTTP protocol of `annuaire serve`, which answers request lines the parser refuses
    with ServerThread(Starlette(routes=routes(store, settings)), **server_options(settings)) as server:
        yield Api(store, f"http://127.0.0.1:{server.port}/fhir/v2", key, data)


