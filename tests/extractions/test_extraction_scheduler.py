"""The daily generation inside `annuaire serve`: when, and in a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from annuaire import formats
from annuaire.config import Settings
from annuaire.extractions import catalog
from annuaire.extractions.scheduler import ExtractionScheduler, next_run, parse_time
from annuaire.extractions.snapshot import PARIS

from .sample_data import populate


def test_next_run_is_the_next_wall_clock_time_in_paris():
    at = parse_time("03:00")
    assert next_run(datetime(2026, 11, 25, 2, 59, tzinfo=PARIS), at) == datetime(2026, 11, 25, 3, 0, tzinfo=PARIS)
    assert next_run(datetime(2026, 11, 25, 3, 0, tzinfo=PARIS), at) == datetime(2026, 11, 26, 3, 0, tzinfo=PARIS)
    summer = next_run(datetime(2026, 7, 1, 12, 0, tzinfo=PARIS), at)
    assert (summer.hour, summer.utcoffset().total_seconds()) == (3, 7200)


@pytest.mark.parametrize("bad", ["3h", "25:00", "12:60", ""])
def test_bad_time_setting_is_named(bad):
    with pytest.raises(ValueError, match="extractions_time"):
        parse_time(bad)


def test_start_up_generation_in_a_subprocess(tmp_path: Path):
    from annuaire.store import open_store

    url = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    store = open_store(url)
    populate(store)
    outdir = tmp_path / "out"
    settings = Settings(extractions_dir=str(outdir), extractions_time="03:00")
    scheduler = ExtractionScheduler(url, settings).start()
    try:
        deadline = time.monotonic() + 60
        while scheduler.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.runs == 1
        assert {e.name for e in catalog.list_extractions(outdir)} == set(catalog.KINDS)
    finally:
        scheduler.stop()
    # Already there: a second start does not generate again at start-up.
    again = ExtractionScheduler(url, settings).start()
    time.sleep(0.3)
    again.stop()
    assert again.runs == 0
    store.dispose()


def test_serve_generates_at_start_up_and_answers_meanwhile(tmp_path: Path):
    """`annuaire serve` on a fresh directory: HTTP answers while the extraction is generated."""
    from annuaire.store import open_store

    url = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    store = open_store(url)
    populate(store)
    store.dispose()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, ANNUAIRE_EXTRACTIONS_DIR=str(tmp_path / "out"), ANNUAIRE_DB=url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "annuaire", "serve", "--http-port", str(port), "--ldap-port", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.head(f"http://127.0.0.1:{port}/extractions/{formats.MSSANTE}").status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, proc.stderr.read1().decode() if proc.poll() is not None else status
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
