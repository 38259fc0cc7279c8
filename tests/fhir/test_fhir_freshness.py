"""The FHIR freshness contract: never a partial answer from a cache known to be behind.

Regression: right after `annuaire serve` on a store imported without rendering, searches answered
200 with `total: 0`, then partial totals, until the renderer (started at the first request)
caught up; `meta.lastUpdated` was the render time, not the time of the change.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from annuaire.cli.app import cli
from annuaire.fhir import auth
from annuaire.fhir.cache import BackgroundRenderer, Status
from annuaire.fhir.render import fhir_instant
from annuaire.store import open_store
from annuaire.store.schema import activity, mailbox, person
from tests.processes import stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_started_behind_its_store_answers_503_until_current(tmp_path: Path) -> None:
    from annuaire.synthetic import generate

    generate(tmp_path / "day0", professionals=1500, seed=3)
    url = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    result = CliRunner().invoke(cli, ["--db", url, "import", "--no-render",
                                      *map(str, sorted((tmp_path / "day0").glob("*.zip")))])
    assert result.exit_code == 0, result.output
    assert "FHIR cache behind the store" in result.output and "annuaire fhir render" in result.output
    store = open_store(url)
    key = auth.add_key(store, "freshness", rate_limit=100_000)
    with store.read() as conn:
        persons = conn.execute(select(func.count()).select_from(person).where(person.c.active)).scalar_one()
    port = _free_port()
    env = dict(os.environ, ANNUAIRE_EXTRACTIONS_TIME="off", ANNUAIRE_EXTRACTIONS_DIR=str(tmp_path / "out"))
    process = subprocess.Popen(
        [sys.executable, "-m", "annuaire", "--db", url, "serve", "--http-port", str(port), "--ldap-port", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"ESANTE-API-KEY": key}) as client:
            while True:
                assert time.monotonic() < deadline, answers[-20:]
                try:
                    r = client.get("/fhir/v2/Practitioner", params={"_count": "1", "_total": "accurate"})
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                answers.append(r.status_code)
                if r.status_code == 503:
                    assert int(r.headers["Retry-After"]) > 0
                    assert r.json()["resourceType"] == "OperationOutcome", r.text
                    assert "FHIR cache" in r.json()["issue"][0]["diagnostics"]
                    time.sleep(0.05)
                    continue
                assert r.status_code == 200, r.text
                # never a partial total: the first 200 already counts every professional
                assert r.json()["total"] == persons
                break
            assert 503 in answers  # it did start behind (the render of 1,500 professionals takes a while)
            assert int(r.headers["X-Journal-Position"]) > 0
            # meta.lastUpdated is the time of the change in the store (not the render's, which came later)
            doc = r.json()["entry"][0]["resource"]
            pid = int(doc["id"].split("-")[1])
            with store.read() as conn:
                own = conn.execute(select(person.c.last_updated).where(person.c.id == pid)).scalar_one()
                latest = max(conn.execute(select(func.max(t.c.last_updated))).scalar_one()
                             for t in (person, activity, mailbox))
            assert fhir_instant(own) <= doc["meta"]["lastUpdated"] <= fhir_instant(latest)
    finally:
        stop(process)
        store.dispose()


class _Store:
    """A store stand-in: `status` is what the test says."""


@pytest.fixture
def renderer(monkeypatch: pytest.MonkeyPatch) -> tuple[BackgroundRenderer, list[Status]]:
    states: list[Status] = []
    monkeypatch.setattr("annuaire.fhir.cache.status", lambda store: states[-1])
    return BackgroundRenderer(_Store(), stale_after=0.2), states  # type: ignore[arg-type]


def test_the_renderer_says_when_the_cache_must_not_be_served(renderer) -> None:  # type: ignore[no-untyped-def]
    r, states = renderer
    assert r.unavailable() is not None  # not checked yet: unknown is not current
    states.append(Status(position=10, head=10, behind=False, rendered=True))
    r.check()
    assert r.unavailable() is None and r.position == 10
    states.append(Status(position=10, head=12, behind=True, rendered=True))
    r.check()
    assert r.unavailable() is None  # a couple of changes, just seen: served while it renders them
    time.sleep(0.25)
    r.check()
    assert "behind for" in (r.unavailable() or "")  # longer than its bound: 503
    states.append(Status(position=10, head=500_000, behind=True, rendered=True))
    r.check()
    assert "500,000" not in (r.unavailable() or "") and "499,990" in (r.unavailable() or "")
    states.append(Status(position=0, head=100, behind=True, rendered=False))
    r.check()
    assert "first rendering" in (r.unavailable() or "")
    states.append(Status(position=500_000, head=500_000, behind=False, rendered=True))
    r.check()
    assert r.unavailable() is None and r.behind_since is None
