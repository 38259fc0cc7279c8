"""The store: one schema for SQLite and PostgreSQL, search keys, journal.

`Store` and `open_store` load on first use: commands that never open the
store (local-sync, generate) start without SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from annuaire.store.engine import Store, open_store

__all__ = ["Store", "open_store"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from annuaire.store import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'annuaire.store' has no attribute {name!r}")
