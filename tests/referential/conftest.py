"""Fixtures of the referential tests: small generated worlds, reused across tests."""

from __future__ import annotations

from pathlib import Path

import pytest

PROFESSIONALS = 3000


def _generate(root: Path, day: int) -> Path:
    from annuaire.synthetic import generate

    out = root / f"day{day}"
    generate(out, professionals=PROFESSIONALS, seed=7, day=day)
    return out


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Folders holding the files of day 0 and day 1 of one fictitious world."""
    root = tmp_path_factory.mktemp("world")
    return {0: _generate(root, 0), 1: _generate(root, 1)}


def ps_zip(folder: Path) -> Path:
    return next(folder.glob("PS_LibreAcces_*.zip"))


def mss_zip(folder: Path) -> Path:
    return next(folder.glob("Extraction_Correspondance_MSSante_*.zip"))
