"""Upgrading a store created by an earlier version keeps what it holds searchable."""

from __future__ import annotations

from sqlalchemy import insert, select, text

from annuaire.mailboxes.publication import lock_domain
from annuaire.store import open_store
from annuaire.store.contains import contains_ids
from annuaire.store.engine import _alembic_config, create_store_engine
from annuaire.store.schema import mailbox

NOW = "2025-01-01T00:00:00.000000Z"


def _at_revision(url: str, revision: str) -> None:
    """The store at `revision`, reached down from the latest one: the layout an older version
    left (creating 0003 with today's code would build today's trigram indexes)."""
    from alembic import command

    config = _alembic_config()
    engine = create_store_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        command.downgrade(config, revision)
    engine.dispose()


def test_0009_reindexes_the_mailboxes_of_an_existing_store(store_url):
    """A store of revision 0008 (trigrams of whole addresses) holding mailboxes: after the
    upgrade, the old index is gone and contains-searches find them through the new one."""
    _at_revision(store_url, "0008")
    old = open_store(store_url, upgrade=False)
    with old.read() as conn:
        if old.is_sqlite:
            assert conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'mailbox_address_tri'").first()
        else:
            assert conn.exec_driver_sql("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_mailbox_address_trgm'").first()
    with old.write() as conn:
        lock_domain(conn, "ch-nord.mssante.fr", NOW)
        conn.execute(insert(mailbox).values(
            address="jean.dupont@ch-nord.mssante.fr", domain="ch-nord.mssante.fr", type="PER",
            liste_rouge=False, source="operator", active=True, version=1, last_updated=NOW, digest=0))
    old.dispose()

    store = open_store(store_url)
    try:
        with store.read() as conn:
            if store.is_sqlite:
                names = {n for (n,) in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
                assert "mailbox_address_tri" not in names and "mailbox_local_tri" in names
            else:
                names = {n for (n,) in conn.exec_driver_sql("SELECT indexname FROM pg_indexes")}
                assert "ix_mailbox_address_trgm" not in names and "ix_mailbox_local_part_trgm" in names
            for fragment in ("dupont", "nord", "ont@ch-"):
                ids = contains_ids(store, "mailbox.address", fragment)
                assert conn.execute(select(mailbox.c.address).where(mailbox.c.id.in_(ids))).scalars().all() == [
                    "jean.dupont@ch-nord.mssante.fr"], fragment
        with store.write() as conn:  # the new triggers follow later writes
            conn.execute(insert(mailbox).values(
                address="urgences@ch-nord.mssante.fr", domain="ch-nord.mssante.fr", type="ORG",
                liste_rouge=False, source="operator", active=True, version=1, last_updated=NOW, digest=0))
        with store.read() as conn:
            ids = contains_ids(store, "mailbox.address", "urgence")
            assert conn.execute(select(mailbox.c.address).where(mailbox.c.id.in_(ids))).scalars().all() == [
                "urgences@ch-nord.mssante.fr"]
    finally:
        store.dispose()


def test_0011_keeps_existing_tokens_and_keys_working(store_url):
    """A store of revision 0010: an operator token stored as scrypt and a FHIR key stored as
    SHA-256. After the upgrade both still authenticate; the key is already in the HMAC form,
    the token becomes so at its first use (it cannot be converted without it)."""
    import hashlib

    from annuaire.fhir.auth import KeyRing
    from annuaire.mailboxes import operators
    from annuaire.store import credentials
    from annuaire.store.schema import api_key, operator

    _at_revision(store_url, "0010")
    token, key = "ann_1_" + "t" * 43, "ak_" + "k" * 43
    old = open_store(store_url, upgrade=False)
    with old.write() as conn:  # the columns of revision 0010 only
        conn.execute(text("INSERT INTO operator (id, name, token_hash, created_at) VALUES (1, 'alpha', :h, :t)"),
                     {"h": operators.hash_token(token), "t": NOW})
        conn.execute(text("INSERT INTO api_key (name, key_hash, active, created_at) VALUES ('logiciel', :h, :a, :t)"),
                     {"h": f"sha256:{hashlib.sha256(key.encode()).hexdigest()}", "a": True, "t": NOW})
    old.dispose()

    store = open_store(store_url)
    try:
        with store.read() as conn:
            assert conn.execute(select(api_key.c.key_hash)).scalar_one().startswith("hmac-sha256$")
            assert conn.execute(select(operator.c.token_hash)).scalar_one().startswith("scrypt$")
        found = KeyRing(store).lookup(key)
        assert found is not None and not found.expired
        assert KeyRing(store).lookup(key + "x") is None
        with store.read() as conn:
            assert operators.authenticate_token(conn, token).name == "alpha"
        credentials.writer.join()
        with store.read() as conn:
            assert conn.execute(select(operator.c.token_hash)).scalar_one().startswith("hmac-sha256$")
            operators._verified._seen.clear()
            assert operators.authenticate_token(conn, token).name == "alpha"
    finally:
        store.dispose()
