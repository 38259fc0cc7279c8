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
    """The store at `revision`: the layout an older version left (the revisions are frozen)."""
    from alembic import command

    config = _alembic_config()
    engine = create_store_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
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


def _trigram_objects(is_sqlite: bool) -> set[str]:
    """Names of the trigram ("contains") objects `annuaire.store.contains` maintains outside
    the metadata: on SQLite the FTS5 tables, on PostgreSQL the GIN indexes."""
    from annuaire.store import contains

    if is_sqlite:
        return {spec.fts for spec in contains.INDEXED.values()}
    return {spec.pg_index for spec in contains.INDEXED.values() if not spec.searched}


def test_an_empty_store_upgraded_to_head_has_exactly_the_live_schema(store_url):
    """From revision 0 to head, the frozen revisions build what `annuaire.store.schema` and
    `annuaire.fhir.tables` describe, nothing more or less (Alembic's own comparison: tables,
    columns and their types, nullability, indexes, unique and foreign keys).

    Left out of that comparison, because a MetaData cannot describe them: SQLite's FTS5
    virtual tables (and the shadow tables FTS5 keeps for each), and PostgreSQL's GIN trigram
    indexes, kept out of the metadata on purpose (the diff engine drops and rebuilds every
    metadata index around a bulk load, `contains.suspend`/`resume` the trigram ones). They are
    checked against `annuaire.store.contains` instead, with SQLite's triggers."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import annuaire.fhir.tables  # noqa: F401 - the FHIR tables join the metadata
    from annuaire.store import contains
    from annuaire.store.schema import metadata

    store = open_store(store_url)
    trigrams = _trigram_objects(store.is_sqlite)
    shadows = ("_data", "_idx", "_content", "_docsize", "_config")

    def outside_metadata(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
        if type_ == "table":
            return not any(name == fts or name in {fts + s for s in shadows} for fts in trigrams)
        if type_ == "index":
            return name not in trigrams
        return True

    try:
        with store.read() as conn:
            context = MigrationContext.configure(conn, opts={
                "include_object": outside_metadata, "compare_type": True, "compare_server_default": True})
            assert compare_metadata(context, metadata) == []
            if store.is_sqlite:
                found = {n for (n,) in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")}
                assert found == trigrams
                triggers = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all())
                expected = {f"{spec.fts}_{event}": contains._trigger_sql(spec, event)
                            for spec in contains._groups().values() for event in contains.TRIGGERS}
                assert triggers == expected  # the runtime recreates them from contains: same text
                for spec in contains._groups().values():
                    columns = [r[1] for r in conn.exec_driver_sql(f"PRAGMA table_info({spec.fts})")]
                    assert tuple(columns) == spec.fts_columns, spec.fts
            else:
                found = dict(conn.execute(text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE indexdef LIKE '%USING gin%'")).all())
                assert set(found) == trigrams
                for spec in contains.INDEXED.values():
                    if not spec.searched:
                        assert "gin_trgm_ops" in found[spec.pg_index]
                        assert ("split_part" in found[spec.pg_index]) == spec.local_part, spec.pg_index
    finally:
        store.dispose()


def test_downgrading_an_empty_store_to_0_removes_every_object(store_url):
    """Each frozen revision undoes what it built: from head down to 0 nothing is left but
    Alembic's own table."""
    from alembic import command

    store = open_store(store_url)
    store.dispose()
    config = _alembic_config()
    engine = create_store_engine(store_url)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                left = {n for (n,) in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
            else:
                left = {n for (n,) in conn.exec_driver_sql(
                    "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'S', 'v')")}
        assert {name for name in left if "alembic_version" not in name} == set()
    finally:
        engine.dispose()
