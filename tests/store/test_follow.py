"""The one journal follower: every committed row once, even when commits land out of id order (PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from annuaire.config import Settings
from annuaire.errors import InvalidInput
from annuaire.store.clock import utc_now
from annuaire.store.follow import MAX_HOLES, Cursor, Follower, Hole, _bounded, start
from annuaire.store.schema import journal, mailbox
from tests.fhir.fhir_data import World


def _box_row(address: str, structure_idnat: str) -> dict[str, Any]:
    return {"address": address, "domain": address.rpartition("@")[2], "type": "ORG", "structure_idnat": structure_idnat,
                "structure_type": "1", "structure": structure_idnat[1:], "service": "Accueil", "liste_rouge": False,
                "source": "operator", "active": True, "version": 1, "last_updated": utc_now(), "digest": 0}


def _write_box(conn: Any, run_id: int, address: str) -> int:
    """What a publication writes for a new box: the row and its journal row (whose id is returned)."""
    conn.execute(insert(mailbox).values(**_box_row(address, "1990000001")))
    return conn.execute(insert(journal).values(
        run_id=run_id, at=utc_now(), entity="mailbox", key=address, change="created",
        scope=address.rpartition("@")[2])).inserted_primary_key[0]


def test_sqlite_and_postgresql_follow_every_row(store) -> None:  # type: ignore[no-untyped-def]
    w = World(store)
    w.structure("F990000001", "SITE")
    with store.read() as conn:
        follower = Follower(start(conn))
    assert follower.poll(store.engine).rows == []
    w.mailbox("a@one.mssante.fr", "ORG", structure_idnat="1990000001")
    w.mailbox("b@one.mssante.fr", "ORG", structure_idnat="1990000001")
    batch = follower.poll(store.engine, limit=1)
    assert [r.key for r in batch.rows] == ["a@one.mssante.fr"] and batch.truncated
    assert [r.key for r in follower.poll(store.engine).rows] == ["b@one.mssante.fr"]
    assert follower.cursor.holes == [] and not follower.behind(store.engine)
    assert Cursor.from_token(follower.cursor.token()) == follower.cursor


@pytest.mark.postgres
def test_two_writers_committing_out_of_id_order_are_both_seen_by_every_view(pg_database: str) -> None:
    """Writer A draws its journal id first and commits last: the follower must not move past it.

    Then every view that follows the journal (LDAP index, FHIR cache, a domain's history) sees both.
    """
    from annuaire.fhir.cache import refresh
    from annuaire.fhir.tables import fhir_telecom
    from annuaire.ldap.backend import load_index, poll
    from annuaire.mailboxes.api import PublicationAPI
    from annuaire.store import open_store
    from tests.conftest import reset_pg_database

    reset_pg_database(pg_database)
    store = open_store(pg_database)
    try:
        w = World(store)
        w.structure("F990000001", "SITE")
        refresh(store)
        suffix = "ou=mailboxes,o=annuaire-sante,c=fr"
        index, ldap_cursor = load_index(store, suffix)
        api = PublicationAPI(store, Settings())
        _, history, _ = api._follow("slow.mssante.fr", Cursor(), 100)
        with store.read() as conn:
            follower = Follower(start(conn))

        slow = store.engine.connect()
        slow_tx = slow.begin()
        slow_id = _write_box(slow, w.run_id, "late@slow.mssante.fr")  # drawn first, committed last
        with store.engine.begin() as fast:
            fast_id = _write_box(fast, w.run_id, "early@fast.mssante.fr")
        assert fast_id > slow_id

        batch = follower.poll(store.engine)
        assert [r.id for r in batch.rows] == [fast_id]
        assert follower.cursor.position == fast_id
        assert [(h.first, h.last) for h in follower.cursor.holes] == [(slow_id, slow_id)]
        assert follower.behind(store.engine) is False  # the late row is not committed yet
        # the views, polled now, see the early change only
        changes = poll(store, ldap_cursor, suffix)
        assert {r["address"] for r in changes.upserts} == {"early@fast.mssante.fr"}
        ldap_cursor = changes.cursor
        refresh(store)

        slow_tx.commit()
        slow.close()
        assert follower.behind(store.engine) is True
        assert [r.id for r in follower.poll(store.engine).rows] == [slow_id]
        # the hole is forgotten once every transaction that could fill it has ended
        _until_forgotten(store, follower)

        changes = poll(store, ldap_cursor, suffix)
        assert {r["address"] for r in changes.upserts} == {"late@slow.mssante.fr"}
        refresh(store)
        with store.read() as conn:
            rendered = set(conn.execute(select(fhir_telecom.c.address)).scalars())
        assert {"early@fast.mssante.fr", "late@slow.mssante.fr"} <= rendered
        entries, _, _ = api._follow("slow.mssante.fr", history, 100)
        assert [e["address"] for e in entries] == ["late@slow.mssante.fr"]
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_rolled_back_id_is_forgotten(pg_database: str) -> None:
    from annuaire.store import open_store
    from tests.conftest import reset_pg_database

    reset_pg_database(pg_database)
    store = open_store(pg_database)
    try:
        w = World(store)
        with store.read() as conn:
            follower = Follower(start(conn))
        lost = store.engine.connect()
        tx = lost.begin()
        lost_id = _write_box(lost, w.run_id, "lost@x.mssante.fr")
        w.mailbox("kept@x.mssante.fr", "ORG", structure_idnat="1990000001")
        assert [r.key for r in follower.poll(store.engine).rows] == ["kept@x.mssante.fr"]
        assert follower.cursor.holes[0].first == lost_id
        tx.rollback()
        lost.close()
        assert follower.poll(store.engine).rows == []
        _until_forgotten(store, follower)
    finally:
        store.dispose()


def _until_forgotten(store: Any, follower: Follower, timeout: float = 60) -> None:
    """Poll until the holes are forgotten: two polls on a quiet server; longer while any transaction
    of the cluster (other tests' databases included) that started before them still runs."""
    import time

    deadline = time.monotonic() + timeout
    while follower.cursor.holes:
        assert follower.poll(store.engine).rows == []
        assert time.monotonic() < deadline, follower.cursor
        time.sleep(0.05)


def test_cursor_tokens_are_checked() -> None:
    cursor = Cursor(42, [Hole(7, 9, 1234)])
    assert Cursor.from_token(cursor.token()) == cursor
    for bad in ("", "x", "!!!", Cursor(5, [Hole(7, 9)]).token(), Cursor(-1).token()):
        with pytest.raises(InvalidInput, match="cursor"):
            Cursor.from_token(bad)


def test_holes_stay_bounded() -> None:
    holes = [Hole(i * 10, i * 10 + 1, i) for i in range(1, MAX_HOLES + 50)]
    merged = _bounded(holes)
    assert len(merged) == MAX_HOLES
    covered = {i for h in merged for i in range(h.first, h.last + 1)}
    assert all(i in covered for h in holes for i in range(h.first, h.last + 1))
