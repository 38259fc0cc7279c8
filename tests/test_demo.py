"""`make demo`'s job, without the servers: generate, import, stats, the demo operator's sample list."""

from __future__ import annotations

import json
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
    from annuaire.fhir.auth import list_keys
    from annuaire.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    try:
        demo_keys = [k for k in list_keys(store) if k.name.startswith("demo-")]
    finally:
        store.dispose()
    assert len(demo_keys) == 2 and [k.active for k in demo_keys].count(True) == 1
