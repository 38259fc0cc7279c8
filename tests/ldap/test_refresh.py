"""Data changes reach every worker within seconds, without restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest
from ldap_data import NOW, journal_row, populate
from ldap_support import SUFFIX, drop_store, make_store, start_server, stop_server
from sqlalchemy import insert, update

from annuaire.store import open_store
from annuaire.store.schema import mailbox, person

ldap3 = pytest.importorskip("ldap3")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh(request, tmp_path):  # type: ignore[no-untyped-def]
    url, dbname = make_store(request.param, tmp_path)
    store = open_store(url)
    world = populate(store, people=30)
    server = start_server(url, tmp_path, world, tls=False)
    try:
        yield server, store
    finally:
        stop_server(server)
        store.dispose()
        drop_store(dbname)


def mails(server, filt: str) -> set[str]:  # type: ignore[no-untyped-def]
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE), auto_bind=True)
    conn.search(SUFFIX, filt, attributes=["mail"])
    out = {e.mail.value for e in conn.entries}
    conn.unbind()
    return out


def eventually(server, filt: str, predicate, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    """Every worker must agree: several fresh connections in a row satisfy `predicate`."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 6:
        streak = streak + 1 if predicate(mails(server, filt)) else 0
        assert time.monotonic() < deadline, f"{filt}: {mails(server, filt)}"
        if not streak:
            time.sleep(0.2)


def test_changes_visible_within_seconds(fresh) -> None:  # type: ignore[no-untyped-def]
    server, store = fresh
    address = "nephrologie@ch-exemple.mssante.fr"
    started = time.monotonic()
    with store.write() as conn:
        conn.execute(insert(mailbox).values(
            id=100_000, address=address, domain="ch-exemple.mssante.fr", type="ORG", structure_type="1",
            structure="00000001",
            structure_idnat="100000001", service="Néphrologie", liste_rouge=False, source="operator", active=True,
            version=1, last_updated=NOW, digest=1))
        journal_row(conn, "mailbox", address, "created")
    eventually(server, "(cn=nephro*)", lambda found: found == {address})
    assert time.monotonic() - started < 10

    with store.write() as conn:
        conn.execute(update(mailbox).where(mailbox.c.address == address).values(liste_rouge=True))
        journal_row(conn, "mailbox", address)
    eventually(server, "(cn=nephro*)", lambda found: found == set())

    idnat = server.world.published["jean.dupont@medecin.mssante.fr"]["idnat"]
    with store.write() as conn:
        conn.execute(update(person).where(person.c.id_nat == idnat).values(last_name="DUPONT-LAJOIE"))
        journal_row(conn, "person", idnat)
    eventually(server, "(sn=dupont lajoie)", lambda found: found == {"jean.dupont@medecin.mssante.fr"})

    with store.write() as conn:
        conn.execute(update(mailbox).where(mailbox.c.address == "jeanne.dupond@medecin.mssante.fr")
                     .values(active=False))
        journal_row(conn, "mailbox", "jeanne.dupond@medecin.mssante.fr", "deleted")
    eventually(server, "(sn=dupond)", lambda found: found == set())


def test_a_departed_holders_box_leaves_and_comes_back(fresh) -> None:  # type: ignore[no-untyped-def]
    """Regression: a PER box whose holder left the referential was still served under the old name.

    The holder's journal row alone (no row for the box) takes the box out of every worker's
    index; the holder's return puts it back.
    """
    server, store = fresh
    address = "jean.dupont@medecin.mssante.fr"
    idnat = server.world.published[address]["idnat"]
    eventually(server, "(sn=dupont)", lambda found: address in found)
    with store.write() as conn:
        conn.execute(update(person).where(person.c.id_nat == idnat).values(active=False))
        journal_row(conn, "person", idnat, "deleted")
    eventually(server, "(sn=dupont)", lambda found: address not in found)
    eventually(server, f"(mail={address})", lambda found: found == set())
    with store.write() as conn:
        conn.execute(update(person).where(person.c.id_nat == idnat).values(active=True))
        journal_row(conn, "person", idnat, "updated")
    eventually(server, f"(mail={address})", lambda found: found == {address})


def test_a_closed_structures_boxes_leave(fresh) -> None:  # type: ignore[no-untyped-def]
    from annuaire.store.schema import structure

    server, store = fresh
    org = "secretariat.dupuytren@ch-exemple.mssante.fr"  # attached to structure 3 (F00000003)
    eventually(server, f"(mail={org})", lambda found: found == {org})
    with store.write() as conn:
        conn.execute(update(structure).where(structure.c.tech_id == "F00000003").values(active=False))
        journal_row(conn, "structure", "F00000003", "deleted")
    eventually(server, f"(mail={org})", lambda found: found == set())
    # (a PER box attached to that structure stays: its holder is still active)
    per = next(a for a, e in server.world.published.items() if e.get("idnat") and a.endswith("hopital-nord.mssante.fr")
               and "secret" not in a)
    eventually(server, f"(mail={per})", lambda found: found == {per})
