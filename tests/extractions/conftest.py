"""Fixtures of the extraction tests: a populated store (both engines), an output directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from .sample_data import populate


@pytest.fixture
def populated(store):
    populate(store)
    return store


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    return tmp_path / "extractions"
