"""`annuaire serve --read-db`: a front reading a real PostgreSQL hot standby, writing to its primary.

The test builds its own primary and streaming replica (tests/pgcluster.py: initdb,
pg_basebackup, as the postgres user, temporary directories, free ports), starts a
front as a real process, publishes through it, and checks what LDAP (ldapsearch),
FHIR and the web pages serve; then pauses the replica's replay and stops it: the
front's /readyz must say so (503 with the reason) and FHIR refuse, rather than
answer from a state behind the primary. Skipped where replicas cannot be built,
except in CI (CI set), where it fails instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from annuaire.fhir.auth import add_key
from annuaire.mailboxes import operators
from annuaire.store import open_store
from annuaire.store.replica import LAG_BOUND
from tests import pgcluster
from tests.mailboxes.mailbox_fixtures import CAMILLE, per, seed_referential
from tests.processes import stop

pytestmark = pytest.mark.postgres
BASE = "o=annuaire-sante,c=fr"
VISIBLE_WITHIN = 10.0  # seconds for a publication to reach every view of the front


@pytest.fixture(scope="module")
def pair() -> Iterator[pgcluster.Pair]:
    reason = pgcluster.unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (the replica tests must run in CI)")
        pytest.skip(reason)
    built = pgcluster.Pair()
    try:
        built.start()
        store = open_store(built.primary.url)  # the schema, on the primary only
        try:
            seed_referential(store)
            _, token = operators.add_operator(store, "alpha", ["a.mssante.fr"])
            key = add_key(store, "replica-test")
        finally:
            store.dispose()
        built.wait_replayed()
        built.secrets.update(token=token, key=key)
        yield built
    finally:
        built.close()


def _annuaire(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "annuaire", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _environ(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "ANNUAIRE_EXTRACTIONS_TIME": "off", "ANNUAIRE_EXTRACTIONS_DIR": str(tmp / "extractions")}
    env.pop("ANNUAIRE_READ_DB", None)
    env.pop("ANNUAIRE_DB", None)
    return env


class Front:
    """`annuaire serve --db <primary> --read-db <replica>` as a real process."""

    def __init__(self, pair: pgcluster.Pair, tmp: Path) -> None:
        self.http_port, self.ldap_port = pgcluster.free_port(), pgcluster.free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.ldap = f"ldap://127.0.0.1:{self.ldap_port}"
        self.log = tmp / "front.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "annuaire", "--db", pair.primary.url, "serve", "--read-db", pair.replica.url,
                 "--http-port", str(self.http_port), "--ldap-port", str(self.ldap_port), "--ldap-workers", "1",
                 "--access-log", "off"], stdout=out, stderr=subprocess.STDOUT, env=_environ(tmp))
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def readyz(self) -> httpx.Response:
        return self.http.get("/readyz")

    def wait(self, what: str, test: Callable[[], Any], timeout: float) -> Any:
        """`test()` until it returns something true; its last value, or a failure naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the front exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                value = test()
            except (httpx.TransportError, OSError):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not within {timeout} s; front log:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def close(self) -> None:
        self.http.close()
        stop(self.process)


@pytest.fixture(scope="module")
def front(pair: pgcluster.Pair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    started = Front(pair, tmp_path_factory.mktemp("front"))
    try:
        started.wait("the front ready", lambda: started.readyz().status_code == 200, 90)
        yield started
    finally:
        started.close()


def _publish(pair: pgcluster.Pair, front: Front, *locals_: str) -> dict:
    body = orjson.dumps({"mailboxes": [per(local) for local in locals_]})
    r = front.http.put("/api/v1/domains/a.mssante.fr/mailboxes", content=body,
                       headers={"Authorization": f"Bearer {pair.secrets['token']}",
                                "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


def _ldap_mails(front: Front, filt: str) -> list[str]:
    """The `mail` values ldapsearch finds (anonymous, as a messaging client asks)."""
    done = subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", front.ldap, "-b", BASE, filt,
                           "mail"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("mail: ")]


def _fhir(pair: pgcluster.Pair, front: Front) -> httpx.Response:
    return front.http.get("/fhir/v2/Practitioner", params={"identifier": CAMILLE},
                          headers={"ESANTE-API-KEY": pair.secrets["key"]})


def _views(pair: pgcluster.Pair, front: Front, address: str) -> dict[str, bool]:
    """Whether the LDAP, FHIR and web views of the front show `address`."""
    fhir = _fhir(pair, front)
    web = front.http.get(f"/pro/{CAMILLE}")
    return {"ldap": address in _ldap_mails(front, f"(mail={address})"), "fhir": fhir.status_code == 200 and address in fhir.text,
            "web": web.status_code == 200 and address in web.text}


def _replica_connections(pair: pgcluster.Pair) -> int:
    return pair.replica.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid()")[0][0]


def test_the_store_reads_the_replica_and_writes_the_primary(pair: pgcluster.Pair) -> None:
    store = open_store(pair.primary.url, upgrade=False, read_url=pair.replica.url)
    try:
        with store.read() as conn:
            assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is True
        with store.write() as conn:
            assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is False
        with store.primary.read() as conn:  # work that reads what it writes: the primary
            assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is False
    finally:
        store.dispose()
    assert store.primary.closed  # (a FHIR renderer on the primary view stops with the store)


def test_a_publication_through_the_front_is_served_from_the_replica(pair: pgcluster.Pair, front: Front) -> None:
    assert front.readyz().json() == {"status": "ready"}
    address = "dr.camille@a.mssante.fr"
    assert _views(pair, front, address) == {"ldap": False, "fhir": False, "web": False}
    published = time.monotonic()
    report = _publish(pair, front, "dr.camille")
    assert report["fhir_current"] is True  # rendered on the primary before answering
    seen = front.wait("the publication in LDAP, FHIR and the web pages",
                      lambda: all(_views(pair, front, address).values()), VISIBLE_WITHIN)
    assert seen and time.monotonic() - published < VISIBLE_WITHIN
    assert _replica_connections(pair) > 0  # the front's reads are the replica's


def test_a_paused_replica_makes_the_front_unready_not_wrong(pair: pgcluster.Pair, front: Front) -> None:
    kept, new = "dr.camille@a.mssante.fr", "cabinet.camille@a.mssante.fr"
    front.wait("the front ready", lambda: front.readyz().status_code == 200, 30)
    _publish(pair, front, "dr.camille")  # (whatever ran before: xdist spreads this module over its workers)
    front.wait("the kept box in LDAP", lambda: _ldap_mails(front, f"(mail={kept})") == [kept], VISIBLE_WITHIN)
    pair.replica.sql("SELECT pg_wal_replay_pause()")
    try:
        _publish(pair, front, "dr.camille", "cabinet.camille")  # the primary takes the write
        answer = front.wait("/readyz failing", lambda: (r := front.readyz()).status_code == 503 and r,
                            LAG_BOUND + 5)
        assert "replica" in answer.json()["failed"], answer.text
        assert "paused" in answer.json()["failed"]["replica"]
        assert answer.headers["Retry-After"]
        refused = _fhir(pair, front)  # FHIR refuses rather than answer from the replica's old state
        assert refused.status_code == 503, refused.text
        assert "replica" in refused.text
        mails = _ldap_mails(front, "(|(mail=dr.camille@a.mssante.fr)(mail=cabinet.camille@a.mssante.fr))")
        assert kept in mails and new not in mails  # LDAP reads the replica: not replayed yet
    finally:
        pair.replica.sql("SELECT pg_wal_replay_resume()")
    front.wait("/readyz back to 200", lambda: front.readyz().status_code == 200, VISIBLE_WITHIN)
    front.wait("the new box in every view", lambda: all(_views(pair, front, new).values()), VISIBLE_WITHIN)


def test_a_lagging_replica_makes_the_front_unready_until_it_catches_up(pair: pgcluster.Pair, front: Front) -> None:
    """A replica applying the primary's commits 8 s late (recovery_min_apply_delay) is more than the 5 s
    bound behind once the front writes; an idle primary before that is no lag at all."""
    late = "secretariat.camille@a.mssante.fr"
    pair.replica.sql("ALTER SYSTEM SET recovery_min_apply_delay = '8s'")
    pair.replica.sql("SELECT pg_reload_conf()")
    try:
        time.sleep(2 * LAG_BOUND / 5)  # idle: the front stays ready whatever the last replayed commit's age
        assert front.readyz().status_code == 200, front.readyz().text
        _publish(pair, front, "dr.camille", "cabinet.camille", "secretariat.camille")
        answer = front.wait("/readyz failing", lambda: (r := front.readyz()).status_code == 503 and r,
                            LAG_BOUND + 2.5)
        assert "s behind the primary" in answer.json()["failed"]["replica"], answer.text
        assert _fhir(pair, front).status_code == 503
        assert late not in _ldap_mails(front, f"(mail={late})")  # not applied on the replica yet
        front.wait("/readyz back to 200 once applied", lambda: front.readyz().status_code == 200, 10)
        front.wait("the late box in every view", lambda: all(_views(pair, front, late).values()), VISIBLE_WITHIN)
    finally:
        pair.replica.sql("ALTER SYSTEM RESET recovery_min_apply_delay")
        pair.replica.sql("SELECT pg_reload_conf()")


def test_a_stopped_replica_makes_the_front_unready(pair: pgcluster.Pair, front: Front) -> None:
    front.wait("the front ready", lambda: front.readyz().status_code == 200, 30)
    pair.replica.stop()
    try:
        answer = front.wait("/readyz failing for the replica",
                            lambda: (r := front.readyz()).status_code == 503 and "replica" in r.json()["failed"] and r,
                            10)
        assert "does not answer" in answer.json()["failed"]["replica"], answer.text
        assert _fhir(pair, front).status_code == 503
        assert front.process.poll() is None  # still running, waiting for its replica
    finally:
        pair.replica.start()
    front.wait("/readyz back to 200", lambda: front.readyz().status_code == 200, 30)


@pytest.mark.parametrize("case", ["primary as replica", "wrong port", "missing database", "sqlite primary"])
def test_a_wrong_replica_is_refused_before_anything_starts(pair: pgcluster.Pair, tmp_path: Path, case: str) -> None:
    primary, replica = pair.primary.url, pair.replica.url
    sqlite = f"sqlite:///{tmp_path / 'a.sqlite'}"
    given, expected = {
        "primary as replica": ((primary, primary), "is not a hot standby (pg_is_in_recovery() is false"),
        "wrong port": ((primary, f"postgresql+psycopg://postgres@127.0.0.1:{pgcluster.free_port()}/annuaire"),
                       "cannot reach --read-db"),
        "missing database": ((primary, replica.rsplit("/", 1)[0] + "/nothing_here"), 'database "nothing_here"'),
        "sqlite primary": ((sqlite, replica), "an SQLite store has no replicas"),
    }[case]
    if case == "sqlite primary":
        open_store(sqlite).dispose()  # (serve refuses a missing store before looking at --read-db)
    http_port = pgcluster.free_port()
    done = _annuaire("--db", given[0], "serve", "--read-db", given[1], "--http-port", str(http_port),
                     "--ldap-port", "0", env=_environ(tmp_path))
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr
    assert "Web search page" not in done.stderr + done.stdout  # refused before announcing anything
    assert "Traceback" not in done.stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=2)


def test_the_environment_names_the_replica(pair: pgcluster.Pair, tmp_path: Path) -> None:
    """ANNUAIRE_READ_DB is --read-db: a primary given there is refused the same way."""
    env = {**_environ(tmp_path), "ANNUAIRE_READ_DB": pair.primary.url}
    done = _annuaire("--db", pair.primary.url, "serve", "--http-port", str(pgcluster.free_port()),
                     "--ldap-port", "0", env=env)
    assert done.returncode != 0 and "is not a hot standby" in done.stderr, done.stderr
