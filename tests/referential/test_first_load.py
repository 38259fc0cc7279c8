"""A first national import on SQLite builds the activities, savoir-faire and diplomas in a
helper process (referential.firstload): the store must end as an import in one process
leaves it, and a bad file must still leave it untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.referential import importer
from annuaire.referential.importer import import_paths
from annuaire.store import open_store
from annuaire.store.schema import referential_print

from .conftest import ps_zip
from .test_import import LATE_EDIT, dump, rewrite_zip
from .test_prints import Labels, rewrite, state, without_first_person


def stores(tmp_path: Path):
    return open_store(f"sqlite:///{tmp_path / 'helper.sqlite'}"), open_store(f"sqlite:///{tmp_path / 'one.sqlite'}")


def records(store) -> dict[str, list[tuple]]:
    """`state`, the journal without its ids: the helper's records are journaled after the
    structures, not before (the same entries, in another order)."""
    out = state(store)
    out["journal"] = sorted((row[1:] for row in out["journal"]), key=repr)
    return out


def prints_of(store) -> list[tuple]:
    with store.read() as conn:
        return sorted(map(tuple, conn.execute(select(referential_print)).all()))


@pytest.mark.parametrize("case", ["day 0", "orphans"])
def test_first_import_by_a_helper_equals_one_process(world, tmp_path, monkeypatch, case):
    day0 = ps_zip(world[0])
    if case == "orphans":  # savoir-faire and diplomas of a person absent from Personne_activite
        (tmp_path / "edited").mkdir()
        day0 = rewrite(day0, tmp_path / "edited" / day0.name, {formats.PERSONNE_ACTIVITE: without_first_person})
    helped, alone = stores(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
        labels = Labels()
        [by_helper] = import_paths(helped, [day0], progress=labels)
    [in_process] = import_paths(alone, [day0])
    assert "Waiting" in labels.labels  # the helper did build the children
    assert by_helper.as_dict()["entities"] == in_process.as_dict()["entities"]
    assert by_helper.warnings == in_process.warnings
    if case == "orphans":
        assert any("absent from Personne_activite" in w for w in by_helper.warnings)
    assert records(helped) == records(alone)
    assert prints_of(helped) == prints_of(alone)
    assert not list(tmp_path.glob(".*.import-*"))  # the scratch database is gone
    # and the next day's refresh finds the same fingerprints
    [a] = import_paths(helped, [ps_zip(world[1])])
    [b] = import_paths(alone, [ps_zip(world[1])])
    assert a.as_dict()["entities"] == b.as_dict()["entities"]
    assert records(helped) == records(alone)


@pytest.mark.parametrize("member", [formats.PERSONNE_ACTIVITE, formats.DIPLOMES])
def test_a_bad_line_stops_a_helped_first_import(world, tmp_path, monkeypatch, member):
    monkeypatch.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
    store, _ = stores(tmp_path)
    before = dump(store)
    bad = rewrite_zip(ps_zip(world[0]), tmp_path / ps_zip(world[0]).name, LATE_EDIT, member)
    with pytest.raises(ImportFileError) as err:
        import_paths(store, [bad])
    assert member in str(err.value) and "line 100" in str(err.value)
    assert dump(store) == before
    assert not list(tmp_path.glob(".*.import-*"))
