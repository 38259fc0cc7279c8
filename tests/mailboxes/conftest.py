"""Fixtures of the publication tests (data and helpers live in mailbox_fixtures.py).

`env` is cheap: one store and one server per test module and engine, reset
to "nothing published" before each test. Tests that need their own settings
or operators build their own with `make_env(store, settings)`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from annuaire.store import Store
from tests.mailboxes.mailbox_fixtures import Env, make_env, reset_publications
from tests.pg import fresh_store


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def module_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A store shared by the tests of one module, on each engine."""
    with fresh_store(request.param, tmp_path_factory.mktemp("mailboxes")) as store:
        yield store


@pytest.fixture(scope="module")
def module_env(module_store: Store) -> Iterator[Env]:
    with make_env(module_store) as env:
        yield env


@pytest.fixture
def env(module_env: Env) -> Env:
    """The module's server, with nothing published yet."""
    reset_publications(module_env.store)
    return module_env
