"""Fixtures: a populated store per engine and the real FHIR API served by
uvicorn on a free port, queried over real HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fhir_data import populate
from fhir_server import Api, _database, serve

from annuaire.fhir.cache import refresh
from annuaire.store import open_store

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=ENGINES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The shared populated directory, read-only: tests must not change it."""
    for url in _database(request.param, tmp_path_factory.mktemp("fhir")):
        store = open_store(url)
        data = populate(store)
        refresh(store)
        yield from serve(store, data)
        store.dispose()


@pytest.fixture(params=ENGINES)
def fresh_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """A populated directory of one's own, for tests that change it."""
    for url in _database(request.param, tmp_path):
        store = open_store(url)
        data = populate(store)
        refresh(store)
        yield from serve(store, data)
        store.dispose()
