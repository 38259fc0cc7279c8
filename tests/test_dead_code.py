"""No dead code: vulture at 80 % confidence (unused imports, variables, arguments,
unreachable code) finds nothing in the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_vulture_finds_no_dead_code() -> None:
    vulture = shutil.which("vulture", path=str(Path(sys.executable).parent)) or shutil.which("vulture")
    if vulture is None:
        pytest.skip("vulture is not installed (pip install -e '.[test]')")
    done = subprocess.run([vulture, "annuaire", "--min-confidence", "80"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
