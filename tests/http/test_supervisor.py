"""annuaire.http.supervisor hands its Settings to the HTTP worker processes explicitly: a server
started from code, with no ANNUAIRE_* variable at all, applies its settings in every worker and
leaves os.environ as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.processes import wait_http
from tests.test_serve import _free_port

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")

SCRIPT = """
import os, sys
from annuaire.config import Settings
from annuaire.http.supervisor import serve
from annuaire.store import open_store

before = dict(os.environ)
settings = Settings(http_port=int(sys.argv[2]), http_workers=2, http_max_header_bytes=4096,
                    extractions_time="off", extractions_dir=sys.argv[3])
serve(open_store(sys.argv[1]), settings, None)
print("environ unchanged" if dict(os.environ) == before else "environ CHANGED", flush=True)
"""


def test_workers_receive_the_settings_not_the_environment(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNUAIRE_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'a.sqlite'}", str(port), str(tmp_path / "out")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        status = wait_http(f"{base}/fhir/v2/metadata", proc)
        assert status == 200, proc.stderr.read() if proc.poll() is not None else status
        # 16 connections land on both workers (all on one: 2**-15); each applies the 4 KiB header
        # cap of the Settings object (the default, 64 KiB, would let 8 KiB through).
        clients = [httpx.Client(base_url=base) for _ in range(16)]
        try:
            for client in clients:
                assert client.get("/fhir/v2/metadata").status_code == 200
                assert client.get("/fhir/v2/metadata", headers={"X-Big": "x" * 8192}).status_code == 431
        finally:
            for client in clients:
                client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert "environ unchanged" in out, err
