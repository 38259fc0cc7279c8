"""Shared data and helpers of the publication tests: a small fictitious referential, operators, a real HTTP server.

The referential rows are inserted directly (a handful of invented people and
structures) so that every rule can be hit on purpose; the server is uvicorn
on a free port in a thread, queried with httpx like an operator would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from sqlalchemy import delete, insert, update
from starlette.applications import Starlette

from annuaire.config import Settings
from annuaire.mailboxes import operators
from annuaire.mailboxes.api import routes
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.keys import search_key
from annuaire.store.schema import (
    activity,
    domain,
    journal,
    mailbox,
    person,
    run,
    structure,
)

# Fictitious people: (id, national id, first name, last name, profession, active)
PEOPLE = [
    (1, "810000000001", "Camille", "Martin", "10", True),
    (2, "810000000002", "Jean-Pierre", "Durand", "21", True),
    (3, "810000000003", "Lucie", "Bernard", "10", False),
    (4, "810000000004", "Hugo", "Lefèvre", "60", True),
    (5, "0123456789", "Alix", "Petit", "50", True),
    (6, "810000000006", "Nina", "Cardio", "10", True),
]
# Fictitious structures: (id, technical id, national id, name, active)
STRUCTURES = [
    (1, "F990000019", "1990000019", "CH EXEMPLE", True),
    (2, "C12345678900011", "312345678900011", "CABINET DURAND", True),
    (3, "R10000000001", "410000000001", "CABINET FERME", False),
    (4, "F880000018", None, "PHARMACIE DU PORT", True),  # known by its technical id only
]
# Active activities: (person id, structure id)
ACTIVITIES = [(1, 1), (2, 2), (4, 1), (5, 2), (6, 1)]

CAMILLE, JEAN_PIERRE, LUCIE, HUGO, ALIX, NINA = (p[1] for p in PEOPLE)


def seed_referential(store: Store) -> None:
    now = utc_now()
    with store.write() as conn:
        conn.execute(insert(person), [
            {"id": i, "id_nat": nat, "id_type": nat[0], "id_pp": nat[1:], "first_name": first, "last_name": last,
             "first_name_key": search_key(first), "last_name_key": search_key(last), "profession_code": prof,
             "active": active, "version": 1, "last_updated": now, "digest": 0}
            for i, nat, first, last, prof, active in PEOPLE
        ])
        conn.execute(insert(structure), [
            {"id": i, "tech_id": tech, "idnat": idnat, "name": name, "active": active, "version": 1,
             "last_updated": now, "digest": 0}
            for i, tech, idnat, name, active in STRUCTURES
        ])
        conn.execute(insert(activity), [
            {"id": n, "key": f"{p}|{s}|0", "person_id": p, "structure_id": s, "active": True, "version": 1,
             "last_updated": now, "digest": 0}
            for n, (p, s) in enumerate(ACTIVITIES, start=1)
        ])


def free_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on such sockets (else 40 ms delayed-ACK stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running(app: Any, **options: Any) -> Iterator[str]:
    """uvicorn serving `app` on a free port in a thread; yields the base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    scheme = "https" if options.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def publication_app(store: Store, settings: Settings) -> Starlette:
    return Starlette(routes=routes(store, settings))


@dataclass
class Env:
    """A store with the referential, two operators and a running API."""

    store: Store
    settings: Settings
    url: str
    tokens: dict[str, str] = field(default_factory=dict)
    client: httpx.Client = None  # type: ignore[assignment]

    def put(self, domain: str, boxes: list[dict] | None = None, *, op: str = "alpha", params: dict | None = None,
            body: bytes | str | None = None, content_type: str = "application/json",
            headers: dict | None = None) -> httpx.Response:
        if body is None:
            import orjson

            body = orjson.dumps({"mailboxes": boxes or []})
        hdrs = {"Authorization": f"Bearer {self.tokens[op]}", "Content-Type": content_type, **(headers or {})}
        return self.client.put(f"/api/v1/domains/{domain}/mailboxes", content=body, params=params, headers=hdrs)

    def get(self, path: str, *, op: str = "alpha", **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[op]}"}, **kwargs)

    def current(self, domain: str, op: str = "alpha") -> dict[str, dict]:
        r = self.get(f"/api/v1/domains/{domain}/mailboxes", op=op)
        assert r.status_code == 200, r.text
        return {b["address"]: b for b in r.json()["mailboxes"]}


@contextmanager
def make_env(store: Store, settings: Settings | None = None) -> Iterator[Env]:
    """Referential + operators alpha (a., b.mssante.fr) and beta (c.mssante.fr) + a running API."""
    settings = settings or Settings()
    seed_referential(store)
    _, alpha = operators.add_operator(store, "alpha", ["a.mssante.fr", "b.mssante.fr"], cert_dn="CN=mail.alpha.test,O=Alpha,C=FR")
    _, beta = operators.add_operator(store, "beta", ["c.mssante.fr"])
    with running(publication_app(store, settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Env(store, settings, url, {"alpha": alpha, "beta": beta}, client)


def reset_publications(store: Store) -> None:
    """Back to "nothing published" without touching the referential or the operators."""
    with store.write() as conn:
        for table in (mailbox, journal, run):
            conn.execute(delete(table))
        conn.execute(delete(domain).where(domain.c.operator_id.is_(None)))
        conn.execute(update(domain).values(version=0, last_published=None))


def per(local: str, holder: str = CAMILLE, domain: str = "a.mssante.fr", **extra: Any) -> dict:
    return {"address": f"{local}@{domain}", "type": "PER", "holder": holder, **extra}


def org(local: str, structure_id: str = "1990000019", domain: str = "a.mssante.fr", **extra: Any) -> dict:
    return {"address": f"{local}@{domain}", "type": "ORG", "structure": structure_id, **extra}
