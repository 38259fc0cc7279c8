"""Fixtures of the local sync tests: a directory of extractions, a local base path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def local_db(tmp_path: Path) -> Path:
    return tmp_path / "carnet.sqlite"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    path = tmp_path / "files"
    path.mkdir()
    return path
