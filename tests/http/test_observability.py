"""/metrics, /readyz and the access log of a real `annuaire serve` (HTTP and LDAP workers, real clients).

The server runs as in production (several HTTP worker processes, forked LDAP
workers); requests come over new connections, so the kernel spreads them
over the workers, and every scrape (answered by any worker) must show the
whole server's numbers. Metrics are parsed with prometheus_client's own
text parser; secrets used in the requests are searched for in the log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import ldap3
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from annuaire.cli import cli
from annuaire.fhir.auth import add_key
from annuaire.ldap.accounts import add_account
from annuaire.mailboxes.operators import add_operator
from annuaire.store import open_store
from tests.fhir.fhir_server import free_port
from tests.ldap.ldap_data import populate
from tests.processes import stop_group

BASE = "o=annuaire-sante,c=fr"
BIND_PASSWORD = "Bind-Secret-7f3a9c"  # what the log must never show
COOKIE = "session-cookie-5d1e8b"
DOMAIN = "observabilite.mssante.fr"
FHIR_SEARCHES = 12
BURST = 5  # new entries a minute for an anonymous address: "(cn=dup*)" finds more


@dataclass
class Server:
    process: subprocess.Popen
    http: int
    ldap: int
    run_parent: Path  # TMPDIR of the server: its run directory is made there
    stderr: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"


@dataclass
class Secrets:
    api_key: str
    token: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Secrets]:
    tmp = tmp_path_factory.mktemp("observed")
    url = f"sqlite:///{tmp / 'annuaire.sqlite'}"
    store = open_store(url)
    try:
        populate(store)
        api_key = add_key(store, "observabilité")
        add_account(store, "observer", BIND_PASSWORD)
        _, token = add_operator(store, "Opérateur observé", [DOMAIN])
    finally:
        store.dispose()
    return url, Secrets(api_key, token)


def _start(tmp: Path, url: str, *args: str) -> Server:
    http, ldap = free_port(), free_port()
    parent = tmp / "run"
    parent.mkdir()
    stderr = tmp / "stderr.log"
    env = dict(os.environ, ANNUAIRE_DB=url, ANNUAIRE_EXTRACTIONS_TIME="off",
               ANNUAIRE_EXTRACTIONS_DIR=str(tmp / "extractions"), ANNUAIRE_LDAP_LIMITS=f"unselective_floor=0,entries_per_minute={BURST}",
               TMPDIR=str(parent))
    with open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "annuaire", "serve", "--http-port", str(http), "--ldap-port", str(ldap), *args],
            env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    server = Server(process, http, ldap, parent, stderr)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(server.url("/readyz"), timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            raise RuntimeError(f"annuaire serve did not become ready:\n{stderr.read_text()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(world: tuple[str, Secrets], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two HTTP workers, two LDAP workers, JSON access log in a file."""
    tmp = tmp_path_factory.mktemp("serve")
    started = _start(tmp, world[0], "--http-workers", "2", "--ldap-workers", "2",
                     "--access-log", str(tmp / "access.log"), "--log-format", "json")
    yield started
    stop_group(started.process)


def _scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus_client: {(name, sorted labels): value}."""
    with httpx.Client() as fresh:  # a new connection: any worker may answer
        answer = fresh.get(server.url("/metrics"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _ldap(server: Server, user: str | None = None, password: str | None = None) -> ldap3.Connection:
    return ldap3.Connection(ldap3.Server("127.0.0.1", port=server.ldap, get_info=ldap3.NONE), user=user,
                            password=password, auto_bind=False, raise_exceptions=False)


def _traffic(server: Server, secrets: Secrets) -> dict[str, int]:
    """Real HTTP and LDAP requests; what each kind should add up to."""
    expected = {"entries": 0}
    for _ in range(FHIR_SEARCHES):
        with httpx.Client() as fresh:  # new connections: spread over both HTTP workers
            answer = fresh.get(server.url("/fhir/v2/Practitioner"), params={"family": "dupont"},
                               headers={"ESANTE-API-KEY": secrets.api_key})
            assert answer.status_code == 200, answer.text
    # Secrets in the places a client may put them: a query parameter, a cookie, the Authorization header.
    assert httpx.get(server.url("/fhir/v2/Practitioner"), params={"family": "x", "key": secrets.api_key}).status_code
    assert httpx.get(server.url("/operateurs"), cookies={"annuaire_session": COOKIE}).status_code < 500
    publish = httpx.put(server.url(f"/api/v1/domains/{DOMAIN}/mailboxes"), content=b'{"mailboxes": []}',
                        headers={"Authorization": f"Bearer {secrets.token}", "Content-Type": "application/json"})
    assert publish.status_code == 200, publish.text
    dry = httpx.put(server.url(f"/api/v1/domains/{DOMAIN}/mailboxes"), params={"dry_run": "true"},
                    content=b'{"mailboxes": []}',
                    headers={"Authorization": f"Bearer {secrets.token}", "Content-Type": "application/json"})
    assert dry.status_code == 200, dry.text
    assert httpx.get(server.url("/pro/000")).status_code == 404
    # LDAP: an account's bind and searches, anonymous refusals, a failed bind.
    conn = _ldap(server, f"cn=observer,ou=accounts,{BASE}", BIND_PASSWORD)
    assert conn.bind()
    for filt in ("(cn=dup*)", "(sn=martin)", "(mail=camille*)"):
        assert conn.search(BASE, filt, attributes=["mail"]), (filt, conn.result)
        expected["entries"] += len(conn.entries)
    conn.unbind()
    anonymous = _ldap(server)
    assert anonymous.bind()
    anonymous.search(BASE, "(objectClass=*)")  # constrains nothing: refused
    assert anonymous.result["result"] == 53
    anonymous.search(BASE, "(mail=*@medecin.mssante.fr)")  # only names a domain: too broad
    assert anonymous.result["result"] == 53 and "filter too broad" in anonymous.result["message"]
    anonymous.search(BASE, "(cn=dup*)", attributes=["mail"])  # cut by the burst budget
    assert anonymous.result["result"] == 11 and len(anonymous.entries) == BURST, anonymous.result
    expected["entries"] += BURST
    anonymous.unbind()
    wrong = _ldap(server, f"cn=observer,ou=accounts,{BASE}", "not-" + BIND_PASSWORD)
    assert not wrong.bind()
    assert expected["entries"] > 3
    return expected


@pytest.fixture(scope="module")
def traffic(server: Server, world: tuple[str, Secrets]) -> dict[str, int]:
    return _traffic(server, world[1])


def test_metrics_are_the_whole_servers_whichever_worker_answers(server: Server, traffic: dict[str, int]) -> None:
    scrapes = [_scrape(server) for _ in range(6)]
    for samples in scrapes:  # the same totals in every scrape: every worker's files added up
        fhir = ("/fhir/v2/{type}",)
        assert _value(samples, "annuaire_requests_total", interface="fhir", kind=fhir[0], status="200") \
            == FHIR_SEARCHES
        assert _value(samples, "annuaire_request_duration_seconds_count", interface="fhir", kind=fhir[0]) \
            == FHIR_SEARCHES + 1  # and the 401 of the query-string key
        assert _value(samples, "annuaire_requests_total", interface="http",
                      kind="/api/v1/domains/{domain}/mailboxes", status="200") == 2
        assert _value(samples, "annuaire_requests_total", interface="web", kind="/pro/{id}", status="404") == 1
        # LDAP: searches by result, entries, refusals by limit, binds.
        assert _value(samples, "annuaire_requests_total", interface="ldap", kind="search", status="success") == 3
        assert _value(samples, "annuaire_requests_total", interface="ldap", kind="search",
                      status="unwillingToPerform") == 2
        assert _value(samples, "annuaire_ldap_entries_returned_total") == traffic["entries"]
        assert _value(samples, "annuaire_ldap_limit_refusals_total", limit="unrestricted_filter") == 1
        assert _value(samples, "annuaire_ldap_limit_refusals_total", limit="unselective_filter") == 1
        assert _value(samples, "annuaire_ldap_limit_refusals_total", limit="entries_per_minute") == 1
        assert _value(samples, "annuaire_ldap_limit_refusals_total", limit="daily_allowance") == 0
        assert _value(samples, "annuaire_requests_total", interface="ldap", kind="search",
                      status="adminLimitExceeded") == 1
        assert _value(samples, "annuaire_requests_total", interface="ldap", kind="bind", status="success") == 2
        assert _value(samples, "annuaire_requests_total", interface="ldap", kind="bind",
                      status="invalidCredentials") == 1
        # Publications and their outcomes, from the store.
        assert _value(samples, "annuaire_publications_total", outcome="ok") == 1
        assert _value(samples, "annuaire_publications_total", outcome="dry_run") == 1
        assert _value(samples, "annuaire_store_up") == 1
    # Histograms: cumulative buckets ending at the count.
    samples = scrapes[-1]
    buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value in samples.items()
                     if name == "annuaire_request_duration_seconds_bucket"
                     and dict(labels)["interface"] == "ldap" and dict(labels)["kind"] == "search")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets) and buckets[-1] == (float("inf"), 6)
    # Both LDAP workers' lags, within their bound; the FHIR cache's backlog.
    for worker in ("0", "1"):
        assert ("annuaire_follower_lag_seconds", (("view", "ldap"), ("worker", worker))) in samples
        assert _value(samples, "annuaire_follower_lag_seconds", view="ldap", worker=worker) < 6
    assert ("annuaire_follower_behind_changes", (("view", "fhir"), ("worker", ""))) in samples


def test_the_access_log_has_one_line_per_request_and_no_secret(server: Server, world: tuple[str, Secrets],
                                                               traffic: dict[str, int]) -> None:
    log = server.run_parent.parent / "access.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and '"result":"invalidCredentials"' not in log.read_text():
        time.sleep(0.1)  # (the failed bind is the traffic's last operation: every line is then written)
    text = log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]  # every line one JSON object
    fhir = [x for x in lines if x["interface"] == "fhir" and x["status"] == 200]
    assert len(fhir) == FHIR_SEARCHES
    assert all(x["method"] == "GET" and x["path"] == "/fhir/v2/Practitioner?family=dupont" and
               x["client"] == "127.0.0.1" and x["duration_ms"] > 0 for x in fhir)
    keyed = [x for x in lines if "key=" in x.get("path", "")]
    assert [x["path"] for x in keyed] == ["/fhir/v2/Practitioner?family=x&key=***"]
    searches = [x for x in lines if x.get("op") == "search"]
    # (each worker process writes its lines in batches: two workers' lines may interleave out of order)
    assert sorted((x["filter"], x["result"]) for x in searches) == sorted([
        ("(cn=dup*)", "success"), ("(sn=martin)", "success"), ("(mail=camille*)", "success"),
        ("(objectClass=*)", "unwillingToPerform"), ("(mail=*@medecin.mssante.fr)", "unwillingToPerform"),
        ("(cn=dup*)", "adminLimitExceeded")])
    first = next(x for x in searches if x["filter"] == "(cn=dup*)" and x["result"] == "success")
    assert first["account"] == "observer" and first["base"] == BASE and first["scope"] == "sub"
    assert sum(x["entries"] for x in searches) == traffic["entries"]
    binds = [(x["dn"], x["result"]) for x in lines if x.get("op") == "bind"]
    assert (f"cn=observer,ou=accounts,{BASE}", "invalidCredentials") in binds
    secrets = world[1]
    for secret in (secrets.api_key, secrets.token, BIND_PASSWORD, COOKIE):
        assert secret not in text
        assert secret not in server.stderr.read_text(encoding="utf-8")


def test_ready_only_while_every_ldap_worker_keeps_up(server: Server, traffic: dict[str, int]) -> None:
    """A worker that stops following the journal (stopped here with SIGSTOP) makes the server not
    ready, naming it, once its bound (5 s plus one refresh) has passed; ready again once it resumes."""
    (run_dir,) = server.run_parent.glob("annuaire-serve-*")
    status = json.loads((run_dir / "ldap-worker-1.json").read_text())
    os.kill(status["pid"], signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 15
        answer = httpx.get(server.url("/readyz"))
        while answer.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            answer = httpx.get(server.url("/readyz"))
        assert answer.status_code == 503 and answer.headers["Retry-After"]
        reason = answer.json()["failed"]["ldap"]
        assert "worker 1 last caught up with the store" in reason and "worker 0" not in reason
        lag = _value(_scrape(server), "annuaire_follower_lag_seconds", view="ldap", worker="1")
        assert lag > 5
    finally:
        os.kill(status["pid"], signal.SIGCONT)
    deadline = time.monotonic() + 10
    while httpx.get(server.url("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the worker resumed"
        time.sleep(0.2)


def test_one_http_worker_text_log_on_stderr_and_the_run_directory_removed_at_stop(
        world: tuple[str, Secrets], tmp_path: Path) -> None:
    """The supervisor serves HTTP itself and forks LDAP: both log (text) to stderr and count in metrics."""
    server = _start(tmp_path, world[0], "--ldap-workers", "1")
    try:
        (run_dir,) = server.run_parent.glob("annuaire-serve-*")
        assert httpx.get(server.url("/healthz")).text == "ok"
        conn = _ldap(server, f"cn=observer,ou=accounts,{BASE}", BIND_PASSWORD)
        assert conn.bind() and conn.search(BASE, "(sn=dupont)")
        conn.unbind()
        samples = _scrape(server)
        assert _value(samples, "annuaire_requests_total", interface="http", kind="/healthz", status="200") == 1
        assert _value(samples, "annuaire_requests_total", interface="ldap", kind="search", status="success") == 1
        deadline = time.monotonic() + 10
        while "op=search" not in server.stderr.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = server.stderr.read_text()
        assert any(" http client=127.0.0.1 method=GET path=/healthz status=200 duration_ms=" in line
                   for line in text.splitlines())
        assert any(' ldap client=127.0.0.1 op=search account=observer base="o=annuaire-sante,c=fr" scope=sub '
                   'filter="(sn=dupont)" entries=' in line for line in text.splitlines()), text
        assert BIND_PASSWORD not in text
    finally:
        stop_group(server.process)
    assert server.process.returncode == 0
    assert not run_dir.exists()


@pytest.mark.parametrize("args,message", [
    (["--log-format", "xml"], "'xml' is not one of 'text', 'json'"),
    (["--access-log", "/nonexistent-dir/access.log"], "--access-log: cannot append to /nonexistent-dir/access.log"),
])
def test_a_bad_log_option_is_refused_before_anything_starts(tmp_path: Path, args: list[str], message: str) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    result = CliRunner().invoke(cli, ["--db", url, "serve", "--http-port", str(free_port()), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Web search page" not in result.output
    assert not (tmp_path / "a.sqlite").exists()  # refused before the store is opened
