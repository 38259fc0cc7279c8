"""`make demo`'s job, without the servers: generate, import, stats, the demo operator's sample list."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path


def test_demo_prepares_a_publishable_world(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "annuaire.demo", "--dir", str(tmp_path), "--professionals", "300", "--no-serve"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "annuaire.sqlite").exists()
    sample = json.loads((tmp_path / "sample-mailboxes.json").read_text())
    assert {box["type"] for box in sample["mailboxes"]} == {"PER", "ORG"}
    assert "persons" in result.stdout + result.stderr
    # A FHIR key ready for the user (printed with the commands to try): one active demo key, however
    # many times the demo runs.
    again = subprocess.run(
        [sys.executable, "-m", "annuaire.demo", "--dir", str(tmp_path), "--professionals", "300", "--no-serve"],
        capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    from annuaire.fhir.auth import KeyRing, list_keys
    from annuaire.store import open_store

    db = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    printed = dict(line.split(": ", 1) for line in again.stdout.splitlines() if line.startswith(("Demo store", "FHIR")))
    assert printed["Demo store"] == db
    key = printed["FHIR API key (demo; earlier demo keys revoked)"]
    store = open_store(db, upgrade=False)
    try:
        demo_keys = [k for k in list_keys(store) if k.name.startswith("demo-")]
        found = KeyRing(store).lookup(key)  # the printed key is the one that works
    finally:
        store.dispose()
    assert len(demo_keys) == 2 and [k.active for k in demo_keys].count(True) == 1
    assert found is not None and not found.expired
    assert f"curl -H 'ESANTE-API-KEY: {key}'" in again.stdout
    # The command lines printed for this store run as printed, on this store (`--db` in each).
    commands = [line.strip() for line in again.stdout.splitlines() if f"--db {db} " in line]
    assert any(c.endswith(" stats") for c in commands) and any("serve --http-port" in c for c in commands)
    for line in commands:
        if line.endswith((" stats", " db check", " apikey list")):
            done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (line, done.stderr[-2000:])
            assert db in done.stdout + done.stderr  # (the store line, or db check's own answer)
