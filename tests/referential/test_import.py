"""Import of the national referential, on SQLite and PostgreSQL."""

from __future__ import annotations

import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from annuaire import formats
from annuaire.errors import Conflict, ImportFileError
from annuaire.referential.importer import import_paths
from annuaire.referential.records import PERSON, STRUCTURE
from annuaire.store.keys import prefix_upper_bound, search_key
from annuaire.store.schema import activity, journal, person, run, skill, structure

from .conftest import ps_zip
from .dump import dump


def member(zip_path: Path, kind: str) -> bytes:
    """One file of the archive, as stored."""
    with zipfile.ZipFile(zip_path) as z:
        return z.read(next(n for n in z.namelist() if n.startswith(kind + "_")))


def read_member(zip_path: Path, kind: str) -> list[dict[str, str]]:
    """An independent reading of one file of the archive: rows as dicts."""
    lines = member(zip_path, kind).decode("utf-8").split("\n")
    header = lines[0].split("|")[:-1]
    return [dict(zip(header, line.split("|")[:-1], strict=False)) for line in lines[1:] if line]


def first_by(rows: list[dict[str, str]], column: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        if row[column]:
            out.setdefault(row[column], row)
    return out


def journal_changes(store, run_id: int, entity: str) -> dict[str, set[str]]:
    changes: dict[str, set[str]] = defaultdict(set)
    with store.read() as conn:
        for key, change in conn.execute(
            select(journal.c.key, journal.c.change).where(journal.c.run_id == run_id, journal.c.entity == entity)
        ):
            changes[change].add(key)
    return changes


def test_first_import_loads_every_line(store, world):
    [summary] = import_paths(store, [ps_zip(world[0])])
    rows = read_member(ps_zip(world[0]), formats.PERSONNE_ACTIVITE)
    persons = first_by(rows, "Identification nationale PP")
    structures = first_by(rows, "Identifiant technique de la structure")
    assert summary.counts["activity"].created == len(rows)
    assert summary.counts["person"].created == len(persons)
    assert summary.counts["structure"].created == len(structures)
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(activity)).scalar() == len(rows)
        # Leading zeros and every field kept as in the file.
        for id_nat, row in list(persons.items())[:200]:
            stored = conn.execute(select(person).where(person.c.id_nat == id_nat)).one()._mapping
            for column, header in PERSON.items():
                assert (stored[column] or "") == row[header], (id_nat, column)
        for tech, row in list(structures.items())[:200]:
            stored = conn.execute(select(structure).where(structure.c.tech_id == tech)).one()._mapping
            for column, header in STRUCTURE.items():
                assert (stored[column] or "") == row[header], (tech, column)
        skills = read_member(ps_zip(world[0]), formats.SAVOIR_FAIRE)
        assert conn.execute(select(func.count()).select_from(skill)).scalar() == len(skills)


def test_refresh_diff_record_by_record(store, world):
    import_paths(store, [ps_zip(world[0])])
    [summary] = import_paths(store, [ps_zip(world[1])])
    before = first_by(read_member(ps_zip(world[0]), formats.PERSONNE_ACTIVITE), "Identification nationale PP")
    after = first_by(read_member(ps_zip(world[1]), formats.PERSONNE_ACTIVITE), "Identification nationale PP")
    created = after.keys() - before.keys()
    deleted = before.keys() - after.keys()
    updated = {
        k for k in before.keys() & after.keys() if any(before[k][h] != after[k][h] for h in PERSON.values())
    }
    assert created or deleted or updated, "day 1 should differ from day 0"
    changes = journal_changes(store, summary.run_id, "person")
    assert changes["created"] == created
    assert changes["deleted"] == deleted
    assert changes["updated"] == updated
    assert summary.counts["person"].unchanged == len(before.keys() & after.keys()) - len(updated)
    with store.read() as conn:
        for id_nat in deleted:
            row = conn.execute(select(person.c.active, person.c.version).where(person.c.id_nat == id_nat)).one()
            assert row.active is False or row.active == 0  # a tombstone, never deleted
            assert row.version == 2
        for id_nat in updated:
            assert conn.execute(select(person.c.version).where(person.c.id_nat == id_nat)).scalar() >= 2

    # Structures: same oracle.
    sb = first_by(read_member(ps_zip(world[0]), formats.PERSONNE_ACTIVITE), "Identifiant technique de la structure")
    sa = first_by(read_member(ps_zip(world[1]), formats.PERSONNE_ACTIVITE), "Identifiant technique de la structure")
    changes = journal_changes(store, summary.run_id, "structure")
    assert changes["created"] == sa.keys() - sb.keys()
    assert changes["deleted"] == sb.keys() - sa.keys()
    assert changes["updated"] == {
        k for k in sb.keys() & sa.keys() if any(sb[k][h] != sa[k][h] for h in STRUCTURE.values())
    }
    # Activities: the active count equals the new file's lines.
    lines = read_member(ps_zip(world[1]), formats.PERSONNE_ACTIVITE)
    with store.read() as conn:
        assert conn.execute(select(func.count()).where(activity.c.active)).scalar() == len(lines)


def test_reimport_is_idempotent(store, world):
    import_paths(store, [ps_zip(world[0])])
    with store.read() as conn:
        journal_rows = conn.execute(select(func.count()).select_from(journal)).scalar()
    before = dump(store)
    [summary] = import_paths(store, [ps_zip(world[0])])
    assert all(c.created == c.updated == c.deactivated == 0 for c in summary.counts.values())
    after = dump(store)
    after.pop("run"), before.pop("run")  # the import itself is logged
    assert after == before
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(journal)).scalar() == journal_rows


def rewrite_zip(source: Path, target: Path, edit, kind: str = formats.PERSONNE_ACTIVITE) -> Path:
    """Copy a PS_LibreAcces zip, editing the text of one member (Personne_activite by default)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.startswith(kind):
                data = edit(data)
            zout.writestr(info.filename, data)
    return target


def test_old_52_column_layout_loads(store, world, tmp_path):
    def to_52(data: bytes) -> bytes:
        out = []
        for line in data.decode().split("\n"):
            if line:
                out.append("|".join(line.split("|")[:52]) + "|")
        return ("\n".join(out) + "\n").encode()

    path = rewrite_zip(ps_zip(world[0]), tmp_path / ps_zip(world[0]).name, to_52)
    [summary] = import_paths(store, [path])
    rows = read_member(ps_zip(world[0]), formats.PERSONNE_ACTIVITE)
    assert summary.counts["activity"].created == len(rows)
    with store.read() as conn:
        assert conn.execute(select(func.count()).where(activity.c.role_code != "")).scalar() == 0


def test_latin1_file_loads(store, world, tmp_path):
    path = rewrite_zip(
        ps_zip(world[0]), tmp_path / ps_zip(world[0]).name, lambda d: d.decode("utf-8").encode("latin-1", "replace")
    )
    import_paths(store, [path])
    with store.read() as conn:
        names = {n for (n,) in conn.execute(select(person.c.last_name))}
    assert any(not n.isascii() for n in names), "accents must survive the latin-1 fallback"


def _truncate(path: Path, target: Path) -> Path:
    target.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return target


def edit_line(number: int, edit):
    """An edit of the Personne_activite text applied to one line (1 = header)."""

    def apply(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[number - 1] = edit(lines[number - 1])
        return b"\n".join(lines)

    return apply


BAD_EDITS = {
    "unknown header": edit_line(1, lambda line: line.replace(b"Identifiant PP", b"Ident PP", 1)),
    "wrong field count": edit_line(100, lambda line: line + b"extra|"),
    "invalid encoding": edit_line(100, lambda line: line.replace(b"|", b"\xff|", 1)),
}
# The diplomas file is read last: its error comes once everything else was written.
LATE_EDIT = edit_line(100, lambda line: line + b"extra|")


@pytest.mark.parametrize("first", [False, True], ids=["refresh", "first import"])
@pytest.mark.parametrize("kind", [*BAD_EDITS, "truncated zip", "wrong field count in the last file"])
def test_bad_file_leaves_store_untouched(store, world, tmp_path, kind, first):
    if not first:
        import_paths(store, [ps_zip(world[0])])
    before = dump(store)
    if kind == "truncated zip":
        bad = _truncate(ps_zip(world[1]), tmp_path / ps_zip(world[1]).name)
    elif kind in BAD_EDITS:
        bad = rewrite_zip(ps_zip(world[1]), tmp_path / ps_zip(world[1]).name, BAD_EDITS[kind])
    else:
        bad = rewrite_zip(ps_zip(world[1]), tmp_path / ps_zip(world[1]).name, LATE_EDIT, formats.DIPLOMES)
    with pytest.raises(ImportFileError) as err:
        import_paths(store, [bad])
    assert ps_zip(world[1]).name in str(err.value)
    if kind not in ("unknown header", "truncated zip"):
        assert "line 100" in str(err.value)
    if kind == "invalid encoding":  # (the byte put before the line's first separator)
        column = member(bad, formats.PERSONNE_ACTIVITE).split(b"\n")[99].index(b"\xff") + 1
        assert f"invalid UTF-8 byte 0xff at column {column}" in str(err.value)
    assert dump(store) == before
    if store.is_sqlite:  # a first import leaves WAL mode for its transaction only
        assert journal_mode(store) == "wal"


def journal_mode(store) -> str:
    with store.read() as conn:
        return conn.exec_driver_sql("PRAGMA journal_mode").scalar()


def test_first_import_writes_straight_into_the_sqlite_file(world, tmp_path):
    """A first import writes straight into the SQLite file (rollback journal) when it has the file
    to itself, not through the WAL; while another connection has it open, it goes through the WAL
    like any import. Either way the file is in WAL mode after. (The other connection is made by the
    store's own SQLite library: two libraries in one process do not see each other's locks.)"""
    from annuaire.store import open_store, sqlitedriver

    def wal_bytes(s) -> int:
        wal = Path(s.url.removeprefix("sqlite:///") + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    store = open_store(f"sqlite:///{tmp_path / 'alone.sqlite'}")
    [alone] = import_paths(store, [ps_zip(world[0])])
    assert wal_bytes(store) < 1_000_000 and journal_mode(store) == "wal"
    store.dispose()
    shared = open_store(f"sqlite:///{tmp_path / 'shared.sqlite'}")
    other = sqlitedriver.connect(str(tmp_path / "shared.sqlite"))
    try:
        assert other.execute("SELECT count(*) FROM person").fetchone() == (0,)
        [summary] = import_paths(shared, [ps_zip(world[0])])
        assert other.execute("SELECT count(*) FROM person").fetchone() == (alone.counts["person"].created,)
        assert wal_bytes(shared) > 2_000_000 and journal_mode(shared) == "wal"
    finally:
        other.close()
        shared.dispose()


def test_older_file_refused_unless_forced(store, world):
    import_paths(store, [ps_zip(world[1])])
    before = dump(store)
    with pytest.raises(Conflict, match="older"):
        import_paths(store, [ps_zip(world[0])])
    assert dump(store) == before
    [summary] = import_paths(store, [ps_zip(world[0])], force=True)
    assert summary.file_ts < formats.parse_file_name(ps_zip(world[1]).name)[1]


def test_individual_txt_files_load(store, world, tmp_path):
    with zipfile.ZipFile(ps_zip(world[0])) as z:
        z.extractall(tmp_path)
    txts = sorted(tmp_path.glob("*.txt"))
    assert len(txts) == 3
    [summary] = import_paths(store, txts)
    assert set(summary.counts) == {"person", "structure", "activity", "skill", "diploma"}


def prefix_search(store, fragment: str) -> set[str]:
    key = search_key(fragment)
    with store.read() as conn:
        return {
            id_nat
            for (id_nat,) in conn.execute(
                select(person.c.id_nat).where(
                    person.c.last_name_key >= key, person.c.last_name_key < prefix_upper_bound(key), person.c.active
                )
            )
        }


def test_prefix_search_is_accent_and_case_insensitive(store, world):
    import_paths(store, [ps_zip(world[0])])
    with store.read() as conn:
        accented = conn.execute(
            select(person.c.last_name).where(person.c.last_name.like("%É%") | person.c.last_name.like("%È%"))
        ).scalars().first()
    assert accented, "the generator should produce accented names"
    plain = search_key(accented)
    assert prefix_search(store, accented[:4].lower()) == prefix_search(store, plain[:4].upper())
    assert prefix_search(store, accented) >= set(prefix_search(store, plain)) and prefix_search(store, accented)


def test_search_keys_give_the_same_people_on_both_engines(world, tmp_path):
    from annuaire.store import open_store
    from tests.pg import create_pg_database, drop_pg_database, skip_or_fail_without_pg

    skip_or_fail_without_pg()
    url, name = create_pg_database()
    try:
        sqlite = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
        pg = open_store(url)
        for s in (sqlite, pg):
            import_paths(s, [ps_zip(world[0])])
        with sqlite.read() as conn:
            names = conn.execute(select(person.c.last_name).limit(50)).scalars().all()
        for fragment in {n[:k] for n in names for k in (1, 3, 5)} | {"lefèvre", "LEFEVRE", "é", "d'", "-"}:
            assert prefix_search(sqlite, fragment) == prefix_search(pg, fragment), fragment
        pg.dispose()
    finally:
        drop_pg_database(name)


def test_run_is_recorded(store, world):
    [summary] = import_paths(store, [ps_zip(world[0])])
    with store.read() as conn:
        row = conn.execute(select(run).where(run.c.id == summary.run_id)).one()
    assert row.status == "ok" and row.kind == "referential" and row.file_ts == summary.file_ts


def _contains_agrees_with_a_scan(store, target: str, table, columns: list[str], fragments: list[str]) -> int:
    """The trigram index answers exactly what a full scan of the table answers."""
    from annuaire.store.contains import contains_ids

    found = 0
    with store.read() as conn:
        for fragment in fragments:
            indexed = {i for (i,) in conn.execute(contains_ids(store, target, fragment))}
            scanned = {
                i for (i,) in conn.execute(select(table.c.id).where(or_(*(table.c[c].contains(fragment) for c in columns))))
            }
            assert indexed == scanned, (target, fragment)
            found += len(indexed)
    return found


def _trigram_indexes(store) -> set[str]:
    """The trigram indexes there are: GIN indexes on PostgreSQL, FTS5 sync triggers on SQLite."""
    sql = ("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm'" if store.is_postgresql
           else "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_tri_%'")
    with store.read() as conn:
        return {name for (name,) in conn.exec_driver_sql(sql)}


def _trigram_indexes_expected(store) -> set[str]:
    from annuaire.store.contains import INDEXED

    if store.is_postgresql:
        return {spec.pg_index for spec in INDEXED.values() if not spec.searched}
    return {f"{spec.fts}_{event}" for spec in INDEXED.values() for event in ("ai", "ad", "au")}


def test_contains_indexes_follow_imports(store, world):
    """Imports fill the trigram indexes in batches (not per row): they must stay exact."""
    from annuaire.store.schema import mailbox

    from .conftest import mss_zip

    for day in (0, 1):
        import_paths(store, [ps_zip(world[day]), mss_zip(world[day])])
        assert _trigram_indexes(store) == _trigram_indexes_expected(store), day  # the first import rebuilds them
        with store.read() as conn:
            names = [n for (n,) in conn.execute(select(person.c.last_name_key).order_by(person.c.id.desc()).limit(5))]
            cities = [c for (c,) in conn.execute(select(structure.c.city_key).order_by(structure.c.id.desc()).limit(3))]
            domains = [d for (d,) in conn.execute(select(mailbox.c.domain).order_by(mailbox.c.id.desc()).limit(3))]
        assert _contains_agrees_with_a_scan(
            store, "person.name", person, ["last_name_key", "first_name_key"], [n[1:5] for n in names if len(n) > 5]
        ) > 0
        assert _contains_agrees_with_a_scan(
            store, "structure.city_key", structure, ["city_key"], [c[:4] for c in cities if len(c) > 4]
        ) > 0
        assert _contains_agrees_with_a_scan(store, "mailbox.address", mailbox, ["address"], [d[:6] for d in domains]) > 0
