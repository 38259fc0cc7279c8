"""/healthz and /readyz over real HTTP: ready only when the store answers and the FHIR cache is current."""

from __future__ import annotations

import os

import httpx
from sqlalchemy import insert

from annuaire.config import Settings
from annuaire.fhir.cache import SMALL_BACKLOG, refresh
from annuaire.http.app import create_app
from annuaire.store.schema import journal
from tests.web import world
from tests.web.conftest import ServerThread


def _journal_rows(store, n: int) -> None:
    with store.write() as conn:
        conn.execute(insert(journal), [
            {"run_id": 1, "at": world.NOW, "entity": "person", "key": f"89{i:010d}", "change": "updated"}
            for i in range(n)
        ])


def test_ready_only_while_the_store_answers_and_the_fhir_cache_is_current(store, tmp_path) -> None:
    world.build(store)
    _journal_rows(store, 1)  # a directory with changes, never rendered
    settings = Settings(extractions_dir=str(tmp_path / "out"))
    with ServerThread(create_app(store, settings)) as server, \
            httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
        assert client.get("/healthz").text == "ok"
        answer = client.get("/readyz")
        if answer.status_code == 200:  # the server's own renderer may already have caught up
            assert answer.json() == {"status": "ready"}
        else:
            assert answer.status_code == 503 and answer.headers["Retry-After"]
            assert "fhir" in answer.json()["failed"]
        refresh(store)
        assert client.get("/readyz").json() == {"status": "ready"}
        # A national import made by another process: far more changes than a refresh renders at once.
        from annuaire.fhir.cache import BackgroundRenderer

        BackgroundRenderer.stop_all()  # (this test's own server must not catch up meanwhile)
        _journal_rows(store, SMALL_BACKLOG + 1)
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert "catching up with" in answer.json()["failed"]["fhir"]
        refresh(store)
        assert client.get("/readyz").status_code == 200
        # The store gone (its file moved away): not ready, and said why; alive all the same.
        store.engine.dispose()
        if store.is_sqlite:
            os.replace(store.engine.url.database, str(tmp_path / "moved.sqlite"))
            answer = client.get("/readyz")
            assert answer.status_code == 503 and "store" in answer.json()["failed"]
            os.replace(str(tmp_path / "moved.sqlite"), store.engine.url.database)
        assert client.get("/healthz").status_code == 200


def test_metrics_of_an_app_on_its_own_count_in_this_process(store, tmp_path) -> None:
    """Outside `annuaire serve` (no run directory) the app's metrics live in its process: /metrics
    still answers, counting each request under its route template, and checks no LDAP worker."""
    from prometheus_client.parser import text_string_to_metric_families

    def requests(client: httpx.Client, kind: str, status: str) -> float:
        text = client.get("/metrics").text
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "annuaire_requests_total"
                   and s.labels == {"interface": "web", "kind": kind, "status": status})

    world.build(store)
    settings = Settings(extractions_dir=str(tmp_path / "out"))
    with ServerThread(create_app(store, settings)) as server, \
            httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
        before = requests(client, "/pro/{id}", "404")
        for n in range(3):
            assert client.get(f"/pro/{n}99999999").status_code == 404
        assert requests(client, "/pro/{id}", "404") == before + 3
        refresh(store)
        assert "ldap" not in client.get("/readyz").json().get("failed", {})
