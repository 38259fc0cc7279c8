"""A full dump of the store, to prove that a failed import changed nothing."""

from __future__ import annotations

from sqlalchemy import select

from annuaire.store import Store
from annuaire.store.schema import metadata


def dump(store: Store) -> dict[str, list[tuple]]:
    out = {}
    with store.read() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out
