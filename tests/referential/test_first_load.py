"""A first national import builds the structures, activities, savoir-faire and diplomas in
a helper process (referential.firstload): the store must end as an import in one process leaves
it, a bad file must still leave it untouched, and no scratch table may stay behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.referential import importer
from annuaire.referential.importer import import_paths
from annuaire.store.schema import referential_print

from .conftest import ps_zip
from .test_import import LATE_EDIT, dump, rewrite_zip
from .test_prints import Labels, other_store, rewrite, state, without_first_person  # noqa: F401 (fixture)


def records(store) -> dict[str, list[tuple]]:
    """`state`, the journal without its ids: the helper's savoir-faire and diplomas are
    journaled largest file first (the same entries, in another order)."""
    out = state(store)
    out["journal"] = sorted((row[1:] for row in out["journal"]), key=repr)
    return out


def prints_of(store) -> list[tuple]:
    with store.read() as conn:
        return sorted(map(tuple, conn.execute(select(referential_print)).all()))


def scratch_left(store, folder: Path) -> list:
    """Scratch files (SQLite) or tables (PostgreSQL) of first imports."""
    if store.is_sqlite:
        return list(folder.glob(".*.import-*"))
    return [name for name in inspect(store.engine).get_table_names() if name.startswith("import_")]


def unknown_code(kind: str, column: str, code: str):
    """An edit of a file's lines: `column` of its fifth line holds `code`."""
    i = COLUMNS[kind].index(column)

    def edit(lines: list[str]) -> list[str]:
        fields = lines[4].split("|")
        fields[i] = code
        return [*lines[:4], "|".join(fields), *lines[5:]]

    return edit


COLUMNS = {formats.PERSONNE_ACTIVITE: formats.PERSONNE_ACTIVITE_COLUMNS, formats.SAVOIR_FAIRE: formats.SAVOIR_FAIRE_COLUMNS}
EDITS = {
    "orphans": {formats.PERSONNE_ACTIVITE: without_first_person},  # lines of a person absent from Personne_activite
    "unknown codes": {  # (Personne_activite's checked by the importer, the savoir-faire file's by the helper)
        formats.PERSONNE_ACTIVITE: unknown_code(formats.PERSONNE_ACTIVITE, "Code mode exercice", "Z9"),
        formats.SAVOIR_FAIRE: unknown_code(formats.SAVOIR_FAIRE, "Code savoir-faire", "ZZ99"),
    },
}


@pytest.mark.parametrize("case", ["day 0", "orphans", "unknown codes"])
def test_first_import_by_a_helper_equals_one_process(store, other_store, world, tmp_path, monkeypatch, case):  # noqa: F811 (pytest fixture imported above)
    day0 = ps_zip(world[0])
    if case in EDITS:
        (tmp_path / "edited").mkdir()
        day0 = rewrite(day0, tmp_path / "edited" / day0.name, EDITS[case])
    with monkeypatch.context() as m:
        m.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
        labels = Labels()
        [by_helper] = import_paths(store, [day0], progress=labels)
    [in_process] = import_paths(other_store, [day0])
    assert "Writing" in labels.labels  # the helper did build the children
    assert by_helper.as_dict()["entities"] == in_process.as_dict()["entities"]
    assert list(by_helper.counts) == list(in_process.counts)  # (the summary's order too)
    assert by_helper.warnings == in_process.warnings
    if case == "orphans":
        assert any("absent from Personne_activite" in w for w in by_helper.warnings)
    if case == "unknown codes":  # reported, and kept in the records
        assert "unknown code 'Z9' in column 'Code mode exercice' (1 line(s), first at line 6)" in by_helper.warnings
        assert "unknown code 'ZZ99' in column 'Code savoir-faire' (1 line(s), first at line 6)" in by_helper.warnings
        with store.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM activity WHERE mode_code = 'Z9'").scalar() == 1
            assert conn.exec_driver_sql("SELECT count(*) FROM skill WHERE code = 'ZZ99'").scalar() == 1
    assert records(store) == records(other_store)
    assert prints_of(store) == prints_of(other_store)
    assert not scratch_left(store, tmp_path)
    # and the next day's refresh finds the same fingerprints
    [a] = import_paths(store, [ps_zip(world[1])])
    [b] = import_paths(other_store, [ps_zip(world[1])])
    assert a.as_dict()["entities"] == b.as_dict()["entities"]
    assert records(store) == records(other_store)


@pytest.mark.parametrize("member", [formats.PERSONNE_ACTIVITE, formats.DIPLOMES])
def test_a_bad_line_stops_a_helped_first_import(store, world, tmp_path, monkeypatch, member):
    monkeypatch.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
    before = dump(store)
    bad = rewrite_zip(ps_zip(world[0]), tmp_path / ps_zip(world[0]).name, LATE_EDIT, member)
    with pytest.raises(ImportFileError) as err:
        import_paths(store, [bad])
    assert member in str(err.value) and "line 100" in str(err.value)
    assert dump(store) == before
    assert not scratch_left(store, tmp_path)


def test_a_helper_that_dies_stops_a_first_import(store, world, tmp_path, monkeypatch):
    from annuaire.errors import DirectoryError
    from annuaire.referential import helper_process

    monkeypatch.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
    monkeypatch.setattr(helper_process.sys, "executable", "/bin/false")
    before = dump(store)
    with pytest.raises(DirectoryError, match="helper process failed"):
        import_paths(store, [ps_zip(world[0])])
    assert dump(store) == before
    assert not scratch_left(store, tmp_path)


def test_a_scratch_table_is_copied_as_stored(tmp_path):
    """SQLite: a scratch file as the helper writes it (the store's own definitions) is
    copied by the transfer optimisation, row and index entries as stored, none decoded:
    what makes the copy of 5 M records cost seconds, not tens. (The structures' trigram
    triggers are dropped for it, as `move_into` does: with them, no transfer.)"""
    from annuaire.referential import firstload
    from annuaire.store import contains
    from annuaire.store.engine import open_store

    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with store.read() as conn:
        scratch = firstload.Scratch(str(tmp_path / "scratch"), "t", "2025-01-01T00:00:00.000000Z",
                                    firstload.sqlite_schema(conn))
    assert set(scratch.schema) == {"structure", "activity", "skill", "diploma"}
    with store.write() as conn:
        for entity in scratch.schema:
            with firstload._table(scratch, entity):
                pass
            conn.exec_driver_sql(f"ATTACH DATABASE ? AS scratch_{entity}", (scratch.path(entity),))
            contains.suspend(conn, entity)
            # (the program holds the row by row copy too, run if the table is not empty)
            plan = [row[1] for row in conn.exec_driver_sql(
                f'EXPLAIN INSERT INTO "{entity}" SELECT * FROM {scratch.table(entity)}')]
            assert "RowData" in plan, (entity, plan)


def test_a_helped_first_import_refuses_tables_written_meanwhile(store, world, tmp_path, monkeypatch):
    """The helper numbers persons and structures from 1, as a first import creates them: a
    structure written since the import looked (none in practice but by another import) stops
    it, with nothing changed."""
    from sqlalchemy import insert

    from annuaire.errors import Conflict
    from annuaire.store.schema import structure

    monkeypatch.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
    with store.write() as conn:
        conn.execute(insert(structure).values(id=1, tech_id="X", active=True, version=1,
                                              last_updated="2025-01-01T00:00:00.000000Z", digest=0))
    before = dump(store)
    with pytest.raises(Conflict, match="another import"):
        import_paths(store, [ps_zip(world[0])])
    assert dump(store) == before
    assert not scratch_left(store, tmp_path)


def definitions(store) -> list[tuple]:
    """The catalog's definitions of the tables a first import's helper builds."""
    names = ("structure", "activity", "skill", "diploma")
    with store.read() as conn:
        if store.is_sqlite:
            return sorted(conn.exec_driver_sql(
                f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN {names}"))
        return sorted([
            *conn.exec_driver_sql("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)",
                                  (list(names),)),
            *conn.exec_driver_sql("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                  "WHERE conrelid::regclass::text = ANY(%s)", (list(names),)),
            *conn.exec_driver_sql("SELECT table_name, column_name, concat_ws(' ', ordinal_position, data_type, "
                                  "character_maximum_length, is_nullable, column_default, collation_name) "
                                  "FROM information_schema.columns WHERE table_name = ANY(%s)", (list(names),)),
        ])


def test_a_helped_first_import_leaves_the_tables_as_migrated(store, other_store, world, monkeypatch):  # noqa: F811 (pytest fixture imported above)
    """The helper's tables are copied into the store's (SQLite) or take their place
    (PostgreSQL): the same columns, indexes and constraints as a store loaded in one process."""
    monkeypatch.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
    before = definitions(store)
    import_paths(store, [ps_zip(world[0])])
    import_paths(other_store, [ps_zip(world[0])])
    assert definitions(store) == before == definitions(other_store)
    assert len(before) > 10


@pytest.mark.postgres
@pytest.mark.parametrize("helped", [True, False], ids=["helped", "one process"])
def test_a_first_import_leaves_postgresql_nothing_to_vacuum(pg_database, world, monkeypatch, helped):
    """A first import writes its rows frozen (COPY FREEZE into tables created or truncated
    in its transaction): every page is all-visible at once, so index-only scans need no
    VACUUM, and the importer only analyzes the tables after it."""
    from annuaire.store.engine import open_store
    from tests.conftest import reset_pg_database

    reset_pg_database(pg_database)
    store = open_store(pg_database)
    if helped:
        monkeypatch.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
    try:
        import_paths(store, [ps_zip(world[0])])
        with store.write() as conn:
            for table in ("person", "structure", "activity", "skill", "diploma"):
                conn.exec_driver_sql(f'ANALYZE "{table}"')  # (counts the visibility map's all-visible pages)
                pages, visible = conn.exec_driver_sql(
                    "SELECT relpages, relallvisible FROM pg_class WHERE oid = %s::regclass", (table,)).one()
                assert pages > 0 and visible == pages, (table, pages, visible)
    finally:
        store.dispose()
