"""`annuaire serve --http-workers N`: several processes answer the same port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_two_http_workers_serve_the_same_port(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    port = _free_port()
    env = dict(os.environ, ANNUAIRE_DB=url, ANNUAIRE_EXTRACTIONS_DIR=str(tmp_path / "out"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "annuaire", "serve", "--http-port", str(port), "--ldap-port", "0",
         "--http-workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/fhir/v2/metadata").status_code
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200, proc.stderr.read1().decode() if proc.poll() is not None else status
        # uvicorn runs the workers as multiprocessing children of the serve process.
        pids = {p for p in _children(proc.pid) if Path(f"/proc/{p}/cmdline").read_bytes().count(b"multiprocessing")}
        assert len(pids) >= 2
        for _ in range(10):
            assert httpx.get(f"http://127.0.0.1:{port}/?q=dupont").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def test_zero_http_workers_is_refused(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "annuaire", "--db", f"sqlite:///{tmp_path / 'a.sqlite'}", "serve",
         "--http-workers", "0", "--ldap-port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "--http-workers" in result.stderr
