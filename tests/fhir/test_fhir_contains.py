"""The trigram indexes of annuaire.store.contains stay in sync with every
writer (triggers on SQLite, GIN indexes on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update

from annuaire.errors import InvalidInput
from annuaire.mailboxes.publication import lock_domain
from annuaire.store.contains import contains_ids
from annuaire.store.keys import search_key
from annuaire.store.schema import mailbox, person

ROW = {"id_type": "8", "id_pp": "x", "active": True, "version": 1, "last_updated": "2025-01-01T00:00:00.000000Z", "digest": 0}


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


def test_address_contains_matches_the_local_part_the_domain_and_across_the_at(store):
    """Same answers on both engines, though PostgreSQL indexes local parts only and finds
    domains through the domain table."""
    addresses = ["jean.dupont@ch-nord.mssante.fr", "urgences@ch-nord.mssante.fr",
                 "marie.nord@cabinet-sud.mssante.fr", "paul_x@labo.fr"]
    now = "2025-01-01T00:00:00.000000Z"
    with store.write() as conn:
        for i, address in enumerate(addresses, 1):
            lock_domain(conn, address.partition("@")[2], now)
            conn.execute(insert(mailbox).values(
                id=i, address=address, domain=address.partition("@")[2], type="PER", liste_rouge=False,
                source="operator", active=True, version=1, last_updated=now, digest=0))

    def found(fragment):
        with store.read() as conn:
            ids = contains_ids(store, "mailbox.address", fragment)
            return sorted(addresses[i - 1] for i in conn.execute(select(mailbox.c.id).where(mailbox.c.id.in_(ids))).scalars())

    assert found("DUPONT") == [addresses[0]]
    assert found("nord") == sorted(addresses[:3])  # two in the domain, one in the local part
    assert found("sante.f") == sorted(addresses[:3])
    assert found("ont@ch-n") == [addresses[0]]
    assert found("ces@") == [addresses[1]]
    assert found("@cabinet") == [addresses[2]]
    assert found("l_x") == [addresses[3]]  # LIKE wildcards are plain characters
    assert found("l%x") == []
    assert found("dupont@cabinet") == []


def test_contains_after_a_bulk_load_then_row_by_row_writes(store, monkeypatch):
    """An empty table loaded in batches gets its trigram index built once, at the end (no
    trigger meanwhile on SQLite); writers after it are indexed row by row again."""
    from annuaire.store import contains, diff

    monkeypatch.setattr(diff, "BATCH", 2)  # several batches written before the end,
    monkeypatch.setattr(contains, "BATCHED", 1)  # each large enough for `batched_inserts`
    names = ["Hélène", "Marlène", "Durand", "Lenoir", "Martin"]
    columns = ("id_type", "id_pp", "last_name", "first_name", "last_name_key", "first_name_key")

    def triggers(conn):
        return {name for (name,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'person'")}

    synced = {f"person_name_tri_{event}" for event in ("ai", "ad", "au")}

    with store.write() as conn:
        sync = diff.TableSync(conn, person, "person", "id_nat", columns, 1, ROW["last_updated"])
        assert sync.bulk
        for i, name in enumerate(names):
            sync.offer(f"8{i}", ("8", "x", name, "Jo", search_key(name), "jo"), i)
            if store.is_sqlite and i == 3:  # two batches written
                assert not triggers(conn)  # (none: they would stop SQLite's transfer into the table)
        sync.finish()
        if store.is_sqlite:
            assert triggers(conn) == synced
            config = dict(conn.exec_driver_sql("SELECT k, v FROM person_name_tri_config").all())
            assert config.get("hashsize", 1 << 20) == 1 << 20  # the bulk setting does not stay

    def found(fragment):
        with store.read() as conn:
            ids = contains_ids(store, "person.last_name_key", fragment)
            return sorted(conn.execute(select(person.c.last_name).where(person.c.id.in_(ids))).scalars())

    assert found("lène") == ["Hélène", "Marlène"]
    assert found("len") == ["Hélène", "Lenoir", "Marlène"]
    with store.write() as conn:
        conn.execute(insert(person).values(dict(ROW, id=9, id_nat="89", last_name="Valène", first_name="Jo",
                                                last_name_key="valene", first_name_key="jo")))
    assert found("lene") == ["Hélène", "Marlène", "Valène"]
    with store.write() as conn:  # updates and deletes are followed again too
        conn.execute(update(person).where(person.c.last_name == "Hélène").values(last_name_key="helena"))
        conn.execute(delete(person).where(person.c.last_name == "Marlène"))
    assert found("lene") == ["Valène"]
