"""Servers started as real processes by the tests: wait for their ready file, stop them cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path


def start_ready(args: list[str], ready: Path, log: Path, env: dict[str, str] | None = None,
                timeout: float = 120) -> tuple[subprocess.Popen, dict]:
    """Start `args`, wait until it writes the JSON `ready` file; (process, what it wrote)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{' '.join(args[:4])} did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return process, json.loads(ready.read_text())


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group of a server started with `start_new_session=True` (its
    forked workers too), then SIGKILL to whatever is left after 20 s."""
    import os

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> int:
    """Poll `url` until it answers 200 (or the process ends, or `timeout`); its last status (0: none)."""
    import httpx

    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline and status != 200:
        try:
            status = httpx.get(url).status_code
        except httpx.TransportError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    return status
