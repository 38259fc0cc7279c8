"""The store: one schema for SQLite and PostgreSQL, search keys, journal."""

from annuaire.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
