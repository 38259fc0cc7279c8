"""The trigram indexes of annuaire.store.contains stay in sync with every
writer (triggers on SQLite, GIN indexes on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update

from annuaire.errors import InvalidInput
from annuaire.store.contains import contains_ids
from annuaire.store.keys import search_key
from annuaire.store.schema import person

ROW = dict(id_type="8", id_pp="x", active=True, version=1, last_updated="2025-01-01T00:00:00.000000Z", digest=0)


def test_contains_follows_inserts_updates_deletes(store):
    with store.write() as conn:
        conn.execute(insert(person), [
            dict(ROW, id=1, id_nat="81", last_name="Hélène-Marie", first_name="Zoé", last_name_key=search_key("Hélène-Marie"), first_name_key="zoe"),
            dict(ROW, id=2, id_nat="82", last_name="MARTIN", first_name="Hélène", last_name_key="martin", first_name_key="helene"),
        ])

    def found(target, fragment):
        with store.read() as conn:
            return sorted(conn.execute(select(person.c.id).where(person.c.id.in_(contains_ids(store, target, fragment)))).scalars())

    assert found("person.last_name_key", "LÈNE") == [1]
    assert found("person.first_name_key", "lene") == [2]
    assert found("person.last_name_key", "ene mar") == [1]
    with store.write() as conn:
        conn.execute(update(person).where(person.c.id == 2).values(last_name_key="helene"))
        conn.execute(delete(person).where(person.c.id == 1))
    assert found("person.last_name_key", "lene") == [2]
    with pytest.raises(InvalidInput, match="at least 3"):
        contains_ids(store, "person.last_name_key", "Éé")
    with pytest.raises(InvalidInput, match="no trigram index"):
        contains_ids(store, "person.id_nat", "123")
