"""The first rendering of the cache (`fhir.fullpass`: two processes, one bulk transaction) leaves
exactly the rows the one-process paths leave: the full pass (`cache._full_pass`) and the
journal follower (`cache._render_affected` of every journal row), on a generated world, on
both engines. And a helper that dies leaves the cache empty, and no scratch behind."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard
from sqlalchemy import select

from annuaire.fhir import cache, fullpass, packing, render
from annuaire.fhir.cache import RefreshStats, refresh
from annuaire.store import Store, open_store, sqlitedriver
from annuaire.store.schema import journal
from tests.pg import (
    PG_ADMIN_URL,
    create_pg_database,
    drop_pg_database,
    libpq,
    skip_or_fail_without_pg,
)

PROFESSIONALS = 1200
ROWS = {
    "fhir_resource": "SELECT kind, rid, active, version, last_updated, digest, json FROM fhir_resource ORDER BY kind, rid",
    "fhir_token": "SELECT kind, param, code, system, rid FROM fhir_token ORDER BY kind, param, code, system, rid",
    "fhir_telecom": "SELECT mailbox_id, kind, rid, address, domain, type FROM fhir_telecom ORDER BY mailbox_id, kind, rid",
    "fhir_legal_entity": "SELECT id, finess FROM fhir_legal_entity ORDER BY id",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from annuaire.synthetic import generate

    folder = tmp_path_factory.mktemp("render-world")
    generate(folder, professionals=PROFESSIONALS, seed=11, day=0)
    return sorted(folder.glob("*.zip"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def imported(request: pytest.FixtureRequest, world: list[Path],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The world imported once per engine, its cache never rendered: (engine, SQLite file or database)."""
    from annuaire.referential.importer import import_paths

    if request.param == "sqlite":
        base = tmp_path_factory.mktemp("render-base") / "base.sqlite"
        store = open_store(f"sqlite:///{base}")
        import_paths(store, world)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        store.dispose()
        yield "sqlite", str(base)
        return
    skip_or_fail_without_pg()
    url, name = create_pg_database("annuaire_render")
    try:
        store = open_store(url)
        import_paths(store, world)
        store.dispose()
        yield "postgresql", name
    finally:
        drop_pg_database(name)


@pytest.fixture
def stores(imported: tuple[str, str], tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A function giving a new store holding the imported world (a copy)."""
    engine, base = imported
    opened: list[Store] = []
    copies: list[str] = []

    def make() -> Store:
        if engine == "sqlite":
            path = tmp_path / f"{uuid.uuid4().hex[:8]}.sqlite"
            shutil.copyfile(base, path)
            opened.append(open_store(f"sqlite:///{path}"))
        else:
            import psycopg

            copy = f"{base}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{base}"')
            copies.append(copy)
            opened.append(open_store(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + copy))
        return opened[-1]

    try:
        yield make
    finally:
        for store in opened:
            store.dispose()
        for copy in copies:
            drop_pg_database(copy)


def rows(store: Store) -> dict[str, list[tuple]]:
    """Every row of the cache, bodies decompressed (each store trains its own dictionary)."""
    out = {}
    with store.read() as conn:
        for table, sql in ROWS.items():
            out[table] = [tuple(packing.unpack(conn, v) if isinstance(v, memoryview | bytes) else v for v in row)
                          for row in conn.exec_driver_sql(sql).all()]
    return out


def one_process_full_pass(store: Store) -> None:
    cache._full_pass(store, RefreshStats(), None)


def journal_follower(store: Store) -> None:
    with store.read() as conn:
        entries = conn.execute(select(journal.c.id, journal.c.entity, journal.c.key).order_by(journal.c.id)).all()
        affected = cache._affected(conn, entries)
    cache._render_affected(store, affected, RefreshStats())


def test_the_first_rendering_leaves_the_rows_of_the_one_process_paths(stores, monkeypatch):
    # Small units and chunks: both processes take many units, legal entities are numbered chunk by chunk.
    monkeypatch.setattr(fullpass, "UNIT", 97)
    monkeypatch.setattr(cache, "CHUNK", 50)
    parallel = stores()
    stats = refresh(parallel, parallel=True)
    assert stats.full and stats.rendered == stats.changed > PROFESSIONALS
    expected = rows(parallel)
    assert len(expected["fhir_resource"]) == stats.rendered
    with parallel.read() as conn:  # bodies stored compressed with the dictionary trained for the pass
        (dict_id,) = conn.exec_driver_sql("SELECT id FROM fhir_dictionary").one()
        stored = [bytes(b) for (b,) in conn.exec_driver_sql("SELECT json FROM fhir_resource").all()]
    assert all(zstandard.get_frame_parameters(b).dict_id == dict_id for b in stored)
    assert sum(map(len, stored)) * 4 < sum(len(r[-1]) for r in expected["fhir_resource"])
    assert expected["fhir_token"] and expected["fhir_telecom"] and expected["fhir_legal_entity"]
    for way in (one_process_full_pass, journal_follower):
        other = stores()
        way(other)
        got = rows(other)
        for table in ROWS:
            assert got[table] == expected[table], f"{way.__name__}: {table} differs"
    # The next refresh has nothing to do: the cursor was saved after the pass.
    assert refresh(parallel, parallel=True).rendered == 0


def test_served_bytes_are_those_of_a_second_serialisation():
    """`finish` puts meta into the body serialised once: the bytes of serialising the document
    with its meta, as before; the digest is `store.digest.digest` of the body's text."""
    import orjson

    from annuaire.store.digest import digest

    person = {"id": 7, "id_nat": "810000000007", "id_type": "8", "id_pp": "10000000007", "active": True,
              "last_name": "EXEMPLE", "first_name": "Zoé", "civilite_code": "MME", "category_code": "C",
              "profession_code": "10"}
    box = {"id": 3, "address": "zoe.exemple@test.mssante.fr", "domain": "test.mssante.fr", "type": "PER",
           "description": "«desc»", "service": None, "rank": 1, "dematerialisation": 1}
    structure = {"id": 5, "tech_id": "F990000001", "idnat": "1990000001", "finess": "990000001", "name": "Site",
                 "active": 1, "street_name": "DE LA PAIX", "commune_code": "99002"}
    for r in (render.practitioner(person, mailboxes=[box]), render.site(structure, "SA01", -4, [box]),
              render.legal_entity(-4, "990000002", False, None)):
        doc = dict(r.doc)
        meta_trace = doc["meta"]
        assert r.body_digest() == digest([orjson.dumps(r.doc).decode()])
        served = r.finish(3, "2026-04-28T16:19:26.335123Z")
        doc["meta"] = orjson.loads(served)["meta"]
        assert served == orjson.dumps(doc)
        assert doc["meta"]["versionId"] == "3" and doc["meta"].get("extension") == (meta_trace or None)


def test_a_helper_that_dies_leaves_the_cache_empty_and_no_scratch(stores, monkeypatch):
    store = stores()
    monkeypatch.setattr(fullpass, "UNIT", 97)
    sent = []
    send = fullpass.Rendering._send

    def send_then_die(self, message):
        send(self, message)
        sent.append(message)
        if len(sent) == 6:  # (the source's URL, then units)
            self._process.kill()

    monkeypatch.setattr(fullpass.Rendering, "_send", send_then_die)
    with pytest.raises(Exception, match="helper process"):
        refresh(store, parallel=True)
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM fhir_resource").scalar() == 0
        assert conn.exec_driver_sql("SELECT lease_until FROM fhir_sync").scalar() == 0
    monkeypatch.setattr(fullpass.Rendering, "_send", send)
    if store.is_sqlite:
        database = Path(store.engine.url.database)
        assert not list(database.parent.glob(f"{database.name}{fullpass.SNAPSHOT_SUFFIX}*"))
        # A snapshot left by a renderer that was killed goes with the next rendering.
        stale = Path(f"{database}{fullpass.SNAPSHOT_SUFFIX}1-deadbeef.sqlite")
        sqlite3.connect(stale).close()
        assert refresh(store, parallel=True).rendered > PROFESSIONALS
        assert not stale.exists()
    else:
        assert refresh(store, parallel=True).rendered > PROFESSIONALS


class Strict(dict):
    """A row of the columns a render function declares: reading any other fails."""

    def __getitem__(self, key: str) -> object:
        assert key in self, f"{key} is read but not in the declared columns"
        return dict.__getitem__(self, key)

    def get(self, key: str, default: object = None) -> object:
        assert key in self, f"{key} is read but not in the declared columns"
        return dict.get(self, key, default)


def test_the_renderer_reads_only_the_declared_columns(stores):
    """The cache reads only `render.*_COLUMNS` of persons, activities, savoir-faire and diplomas."""
    store = stores()
    if not store.is_sqlite:
        pytest.skip("the same on both engines")
    with store.read() as conn:
        persons = [dict(r) for r in conn.exec_driver_sql("SELECT * FROM person").mappings()]
        activities = [dict(r) for r in conn.exec_driver_sql("SELECT * FROM activity").mappings()]
        quals: dict[int, list] = {}
        for table in ("skill", "diploma"):
            for r in conn.exec_driver_sql(f"SELECT * FROM {table}").mappings():
                quals.setdefault(r["person_id"], []).append(dict(r))

    def strict(row: dict, columns: tuple[str, ...]) -> Strict:
        return Strict({c: row[c] for c in columns})

    assert persons and activities and quals
    for p in persons:
        mine = quals.get(p["id"], [])
        full = render.practitioner(p, mine, mine, (), ["CNOM/X"])
        declared = render.practitioner(strict(p, render.PRACTITIONER_COLUMNS),
                                       [strict(q, render.QUALIFICATION_COLUMNS) for q in mine],
                                       [strict(q, render.QUALIFICATION_COLUMNS) for q in mine], (), ["CNOM/X"])
        assert declared.body() == full.body() and declared.tokens == full.tokens
    for a in activities:
        full = render.role(a, a["structure_id"])
        declared = render.role(strict(a, render.ROLE_COLUMNS), a["structure_id"])
        assert declared.body() == full.body() and declared.tokens == full.tokens


def test_with_the_file_open_elsewhere_the_rendering_stays_in_wal_mode(stores, monkeypatch):
    """A running server keeps the SQLite file open: the rendering cannot switch it to a rollback
    journal; it renders the same rows in WAL mode, and the server's reads go on meanwhile."""
    store = stores()
    if not store.is_sqlite:
        pytest.skip("SQLite's journal modes")
    monkeypatch.setattr(fullpass, "UNIT", 97)
    # (another process's connection, as a server's; by the store's own SQLite library: see sqlitedriver)
    other = sqlitedriver.connect(store.engine.url.database)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        reads = []
        write = fullpass._Writer.write

        def write_and_read(self, batch):
            write(self, batch)
            reads.append(other.execute("SELECT count(*) FROM person").fetchone()[0])

        monkeypatch.setattr(fullpass._Writer, "write", write_and_read)
        refresh(store, parallel=True)
        assert reads and all(n == PROFESSIONALS for n in reads)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()
    reference = stores()
    one_process_full_pass(reference)
    assert rows(store) == rows(reference)
