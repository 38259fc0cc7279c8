"""Limits shared by the worker processes of `annuaire serve --http-workers 2`: a FHIR key's
rate and the failed-authentication throttle hold for the server, not per worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from annuaire.cli import cli
from annuaire.store import open_store
from tests.processes import wait_http
from tests.test_serve import _children, _established, _free_port

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
RATE = 5  # requests/s of the key


def _hammer(base: str, headers: dict[str, str], requests: int, connections: int = 16,
            at_most: float = 20.0) -> tuple[Counter, float]:
    """`connections` keep-alive clients sending `requests` in all as fast as they can (or for
    `at_most` seconds): the status codes and the seconds it took."""
    codes: Counter = Counter()
    left = [requests]
    lock = threading.Lock()
    started = time.monotonic()

    def run() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            while time.monotonic() - started < at_most:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                status = client.get("/fhir/v2/Practitioner", params={"_count": "1"}).status_code
                with lock:
                    codes[status] += 1

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes, time.monotonic() - started


def test_two_workers_share_the_key_rate_and_the_failure_throttle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    open_store(url).dispose()  # (keys go only into an existing store)
    result = CliRunner().invoke(cli, ["--db", url, "apikey", "add", "Lent", "--rate-limit", str(RATE)])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    port = _free_port()
    env = dict(os.environ, ANNUAIRE_DB=url, ANNUAIRE_EXTRACTIONS_DIR=str(tmp_path / "out"),
               ANNUAIRE_AUTH_FAILURES_PER_ADDRESS="10")
    with (tmp_path / "stderr.log").open("wb") as err:  # (its access log: a pipe nobody drains would fill)
        proc = subprocess.Popen(
            [sys.executable, "-m", "annuaire", "serve", "--http-port", str(port), "--ldap-port", "0",
             "--http-workers", "2"],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        status = wait_http(f"{base}/fhir/v2/metadata", proc)
        assert status == 200, (tmp_path / "stderr.log").read_text() if proc.poll() is not None else status
        workers = {p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(workers) == 2

        # One key, 16 connections spread over both workers, 4 s: the accepted total is the key's
        # rate (a burst of RATE, then RATE a second), not twice it (with buckets per worker process
        # it was ~2 x (RATE + RATE x 4)). 503 (cache still warming) passed the limit: only 429 is refused.
        seen: dict[int, int] = {}
        sampler = threading.Thread(target=lambda: [seen.update({p: max(seen.get(p, 0), _established(p, port))
                                                                for p in workers}) or time.sleep(0.2)
                                                   for _ in range(10)])
        sampler.start()
        codes, elapsed = _hammer(base, {"ESANTE-API-KEY": key}, 10**9, at_most=4.0)
        sampler.join()
        accepted = sum(n for status, n in codes.items() if status != 429)
        assert RATE <= accepted <= RATE + RATE * elapsed + 2, (codes, elapsed)  # per worker: up to twice
        assert codes[429] > 100, codes
        assert all(seen.values()), seen  # both workers had connections

        # Wrong keys from one address: 10 failures a minute for the whole server, then 429.
        codes, elapsed = _hammer(base, {"ESANTE-API-KEY": "ak_" + "x" * 43}, 100)
        assert 10 <= codes[401] <= 10 + 16 + elapsed / 6, codes  # (16 in flight when the budget ran out)
        assert codes[401] + codes[429] == 100, codes
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
