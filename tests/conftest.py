"""Shared fixtures: a fresh store per test, on SQLite and on PostgreSQL.

PostgreSQL tests create and drop their own database. They skip with a clear
message when no server answers, except in CI (CI=true) where they must run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import (
    create_pg_database,
    drop_pg_database,
    libpq,
    skip_or_fail_without_pg,
)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One PostgreSQL database for this test process, dropped at the end."""
    skip_or_fail_without_pg()
    url, name = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def reset_pg_database(url: str) -> None:
    """Empty the database: much faster than CREATE/DROP DATABASE per test."""
    import psycopg

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        # Connections a previous test left behind must not block the reset.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty store; the test runs once per engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
        return
    url = request.getfixturevalue("pg_database")
    reset_pg_database(url)
    yield url


@pytest.fixture
def store(store_url: str):
    """An opened, migrated, empty store."""
    from annuaire.store import open_store

    s = open_store(store_url)
    yield s
    s.dispose()


@pytest.fixture(autouse=True)
def _no_renderer_outlives_its_test() -> Iterator[None]:
    """A FHIR app's background renderer stops with its test: the next test reuses this
    process's PostgreSQL database, where it would take the lease and render."""
    yield
    from annuaire.fhir.cache import BackgroundRenderer

    BackgroundRenderer.stop_all()
