"""Shared fixtures: a fresh store per test, on SQLite and on PostgreSQL.

PostgreSQL tests create and drop their own database. They skip with a clear
message when no server answers, except in CI (CI=true) where they must run.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

PG_ADMIN_URL = os.environ.get("ANNUAIRE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        import psycopg

        with psycopg.connect(_libpq(PG_ADMIN_URL), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).strip().splitlines()[0]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


_PG_REASON = _pg_available()


def skip_or_fail_without_pg() -> None:
    if _PG_REASON is None:
        return
    message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {_PG_REASON}"
    if os.environ.get("CI"):
        pytest.fail(message + " (PostgreSQL tests must run in CI)")
    pytest.skip(message)


def create_pg_database() -> tuple[str, str]:
    """A new empty database: (its URL, its name)."""
    import psycopg

    name = f"annuaire_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}", name


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
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
