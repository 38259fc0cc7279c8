"""Round trip: national files -> our store -> our extractions -> another store, same content.

Another instance of this system can mirror us: it loads our extractions
with the same importers (referential: `annuaire.referential.importer`;
mailboxes: `annuaire.mailboxes.national`) and ends up with the same active
referential and the same published mailboxes. Our extractions are also
compared with the (fictitious) national files they were loaded from.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from annuaire import formats
from annuaire.extractions.generate import generate
from annuaire.referential.importer import import_paths
from annuaire.store import Store, open_store
from annuaire.store.schema import activity, diploma, mailbox, person, skill, structure
from annuaire.synthetic import generate as synthesize

RECORD = {"id", "active", "version", "last_updated", "digest", "person_id", "structure_id", "run_id", "source"}


def _rows(store: Store, table, where=None) -> set[tuple]:  # type: ignore[no-untyped-def]
    columns = [c for c in table.c if c.name not in RECORD]
    stmt = select(*columns).where(table.c.active)
    if where is not None:
        stmt = stmt.where(where)
    with store.read() as conn:
        return {tuple(row) for row in conn.execute(stmt)}


def content(store: Store) -> dict[str, set[tuple]]:
    """The active referential and the published mailboxes, without surrogate ids or versions."""
    published = [
        mailbox.c.address, mailbox.c.type, mailbox.c.holder, mailbox.c.structure_type, mailbox.c.structure,
        mailbox.c.structure_idnat, mailbox.c.service, mailbox.c.dematerialisation,
    ]
    with store.read() as conn:
        boxes = {tuple(r) for r in conn.execute(select(*published).where(mailbox.c.active, ~mailbox.c.liste_rouge))}
    return {
        "person": _rows(store, person),
        "structure": _rows(store, structure),
        "activity": _rows(store, activity),
        "skill": _rows(store, skill),
        "diploma": _rows(store, diploma),
        "mailbox": boxes,
    }


def _members(path: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(path) as z:
        return {n.rsplit("_", 1)[0]: z.read(n).decode("utf-8").splitlines() for n in z.namelist()}


@pytest.fixture(scope="module")
def national(tmp_path_factory) -> dict:
    return synthesize(tmp_path_factory.mktemp("national"), professionals=1500, seed=5)


def test_round_trip(store, national, tmp_path):
    import_paths(store, [national["ps_libre_acces"], national["mssante"]])
    manifests = generate(store, tmp_path / "ours")
    ours = {m.name: tmp_path / "ours" / m.zip["name"] for m in manifests}

    # Our referential files are the national ones, line for line, in the same order.
    theirs_ps, ours_ps = _members(national["ps_libre_acces"]), _members(ours[formats.PS_LIBRE_ACCES])
    assert theirs_ps.keys() == ours_ps.keys()
    for name in theirs_ps:
        assert ours_ps[name] == theirs_ps[name], name
    # Our MSSanté file holds the same lines (the address is the key; the order is ours).
    theirs_ms, ours_ms = _members(national["mssante"]), _members(ours[formats.MSSANTE])
    (kind,) = theirs_ms
    assert ours_ms[kind][0] == theirs_ms[kind][0]
    assert sorted(ours_ms[kind][1:]) == sorted(theirs_ms[kind][1:])
    assert len(ours_ms[kind]) - 1 == national["mssante_lines"]

    # Another instance loads our files back to the same content.
    mirror = open_store(f"sqlite:///{tmp_path / 'mirror.sqlite'}")
    try:
        import_paths(mirror, [ours[formats.PS_LIBRE_ACCES], ours[formats.MSSANTE]])
        original, copied = content(store), content(mirror)
        for table in original:
            assert copied[table] == original[table], table
        assert len(original["mailbox"]) == national["mssante_lines"]
    finally:
        mirror.dispose()
