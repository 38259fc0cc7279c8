"""PostgreSQL for the tests: one admin URL, a database per use, skip (or fail in CI) without a server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from annuaire.store import Store

PG_ADMIN_URL = os.environ.get("ANNUAIRE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        import psycopg

        with psycopg.connect(libpq(PG_ADMIN_URL), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).strip().splitlines()[0]


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


_PG_REASON = _pg_available()


def skip_or_fail_without_pg() -> None:
    if _PG_REASON is None:
        return
    message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {_PG_REASON}"
    if os.environ.get("CI"):
        pytest.fail(message + " (PostgreSQL tests must run in CI)")
    pytest.skip(message)


def create_pg_database(prefix: str = "annuaire_test") -> tuple[str, str]:
    """A new empty database: (its URL, its name)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}", name


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_store(engine: str, folder: Path) -> Iterator[Store]:
    """An opened, migrated store of its own on `engine`: an SQLite file in `folder`, or a PostgreSQL
    database created for it and dropped after (module-scoped fixtures share one per engine)."""
    from annuaire.store import open_store

    name = None
    if engine == "sqlite":
        url = f"sqlite:///{folder / 'annuaire.sqlite'}"
    else:
        skip_or_fail_without_pg()
        url, name = create_pg_database()
    store = open_store(url)
    try:
        yield store
    finally:
        store.dispose()
        if name:
            drop_pg_database(name)
