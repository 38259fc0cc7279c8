"""A refresh reads again only the persons whose lines changed (referential.prints), and
must leave the store exactly as a diff of every line would."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from annuaire import formats
from annuaire.referential import helper_process, importer
from annuaire.referential.importer import import_paths
from annuaire.store import open_store
from annuaire.store.schema import metadata, referential_print
from tests.pg import create_pg_database, drop_pg_database

from .conftest import ps_zip

NOT_COMPARED = {"run", "referential_print", "fhir_sync", "server_secret"}  # run times, the cache itself, random keys
TIMES = {"last_updated", "at", "run_id"}


class Labels:
    """A progress reporter that keeps the labels of the steps."""

    def __init__(self) -> None:
        self.labels: list[str] = []

    def start(self, label: str, total: int) -> None:
        self.labels.append(label.split()[0])

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


def state(store) -> dict[str, list[tuple]]:
    """Every record and journal row, without the times of the run."""
    out = {}
    with store.read() as conn:
        for table in metadata.sorted_tables:
            if table.name not in NOT_COMPARED:
                rows = conn.execute(select(*(c for c in table.c if c.name not in TIMES))).all()
                out[table.name] = sorted(map(tuple, rows), key=repr)
    return out


@pytest.fixture
def other_store(store_url: str, tmp_path: Path):
    """A second empty store on the same engine."""
    if store_url.startswith("sqlite"):
        s = open_store(f"sqlite:///{tmp_path / 'other.sqlite'}")
        yield s
        s.dispose()
        return
    url, name = create_pg_database("annuaire_prints")
    s = open_store(url)
    try:
        yield s
    finally:
        s.dispose()
        drop_pg_database(name)


def rewrite(source: Path, target: Path, edits: dict[str, callable]) -> Path:
    """A copy of a PS_LibreAcces zip with some members' lines edited (header excluded)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            kind = formats.parse_file_name(info.filename)[0]
            if kind in edits:
                header, *lines = data.decode().rstrip("\n").split("\n")
                data = ("\n".join([header, *edits[kind](lines)]) + "\n").encode()
            zout.writestr(info.filename, data)
    return target


def person_of(line: str) -> str:
    return line.split("|")[2]


def apart(lines: list[str]) -> list[str]:
    """The second line of the first person having several is moved to the end of the file."""
    i = next(i for i in range(1, len(lines)) if person_of(lines[i]) == person_of(lines[i - 1]))
    return [*lines[:i], *lines[i + 1:], lines[i]]


def swapped(lines: list[str]) -> list[str]:
    """Two lines of one person exchanged (its first line, hence its record, changes)."""
    i = next(i for i in range(1, len(lines)) if person_of(lines[i]) == person_of(lines[i - 1])
             and lines[i] != lines[i - 1])
    return [*lines[:i - 1], lines[i], lines[i - 1], *lines[i + 1:]]


def renamed_structure(lines: list[str]) -> list[str]:
    """One structure renamed on every line naming it."""
    i_tech = formats.PERSONNE_ACTIVITE_COLUMNS.index("Identifiant technique de la structure")
    i_name = formats.PERSONNE_ACTIVITE_COLUMNS.index("Raison sociale site")
    tech = next(line.split("|")[i_tech] for line in lines if line.split("|")[i_tech])
    out = []
    for line in lines:
        fields = line.split("|")
        if fields[i_tech] == tech:
            fields[i_name] = "CENTRE RENOMME " + fields[i_name]
        out.append("|".join(fields))
    return out


def without_first_person(lines: list[str]) -> list[str]:
    first = person_of(lines[0])
    return [line for line in lines if person_of(line) != first]


def relabelled(lines: list[str]) -> list[str]:
    """Every line changes (most of the file: read in full, not compared)."""
    i = formats.PERSONNE_ACTIVITE_COLUMNS.index("Libellé catégorie professionnelle")
    return ["|".join(f + " (modifié)" if n == i else f for n, f in enumerate(line.split("|"))) for line in lines]


PA, SF, DIPL = formats.PERSONNE_ACTIVITE, formats.SAVOIR_FAIRE, formats.DIPLOMES
CASES = {
    "day 1": None,
    "lines of a person apart": {PA: apart, SF: apart, DIPL: apart},
    "lines of a person swapped": {PA: swapped, DIPL: swapped},
    "structure renamed": {PA: renamed_structure},
    "person gone, savoir-faire kept": {PA: without_first_person},
    "diplomas only": {DIPL: lambda lines: lines[:-5]},
    "every line changed": {PA: relabelled},
}


@pytest.fixture(params=["in process", "helper"])
def ahead(request, monkeypatch) -> str:
    """Savoir-faire and diplomas compared in this process, or by the helper process."""
    if request.param == "helper":
        monkeypatch.setattr(importer, "AHEAD_MIN_SIZE", 0)
    return request.param


@pytest.mark.parametrize("case", CASES)
def test_refresh_by_fingerprints_equals_a_full_diff(store, other_store, world, tmp_path, case, ahead):
    day0 = ps_zip(world[0])
    new = ps_zip(world[1]) if CASES[case] is None else rewrite(ps_zip(world[1]), tmp_path / ps_zip(world[1]).name, CASES[case])
    for s in (store, other_store):
        import_paths(s, [day0])
    with other_store.write() as conn:  # no fingerprints: every line is compared
        conn.execute(delete(referential_print))
    fast, full = Labels(), Labels()
    [by_prints] = import_paths(store, [new], progress=fast)
    [by_lines] = import_paths(other_store, [new], progress=full)
    assert by_prints.as_dict()["entities"] == by_lines.as_dict()["entities"]
    assert by_prints.warnings == by_lines.warnings
    assert state(store) == state(other_store)
    assert "Comparing" in fast.labels and "Comparing" not in full.labels
    if case == "every line changed":  # more than a quarter of the file: read again in full
        assert fast.labels[:2] == ["Comparing", "Reading"]
    else:  # only the persons whose lines changed were read
        assert "Reading" not in fast.labels


def test_a_file_imported_alone_forgets_the_fingerprints_of_the_others(store, world, tmp_path):
    import_paths(store, [ps_zip(world[0])])
    with zipfile.ZipFile(ps_zip(world[1])) as z:
        z.extractall(tmp_path)
    [personne_activite] = tmp_path.glob(f"{PA}_*.txt")
    import_paths(store, [personne_activite], force=True)  # (a part of a day: --force)
    with store.read() as conn:
        kinds = set(conn.execute(select(referential_print.c.kind)).scalars())
    assert kinds == {PA}


def test_a_file_read_as_latin1_keeps_no_fingerprints(store, other_store, world, tmp_path):
    """Unchanged lines are not decoded again: only bytes once read as UTF-8 can be trusted
    to decode alike, so the next import of a latin-1 file's kinds reads every line."""
    day0 = ps_zip(world[0])
    latin1 = tmp_path / day0.name
    with zipfile.ZipFile(day0) as zin, zipfile.ZipFile(latin1, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename).decode().encode("latin-1", "replace"))
    for s in (store, other_store):
        import_paths(s, [latin1])
    with store.read() as conn:
        assert not conn.execute(select(referential_print.c.kind)).scalars().all()
    with other_store.write() as conn:
        conn.execute(delete(referential_print))
    fast = Labels()
    import_paths(store, [ps_zip(world[1])], progress=fast)
    import_paths(other_store, [ps_zip(world[1])])
    assert "Comparing" not in fast.labels
    assert state(store) == state(other_store)


def test_orphans_of_the_last_import_are_read_again(store, other_store, world, tmp_path, ahead):
    """Lines skipped as orphans (their person was not in Personne_activite) are unchanged
    when the person comes back: they must still be read, and their records created."""
    day0 = ps_zip(world[0])
    (tmp_path / "without").mkdir()
    without = rewrite(day0, tmp_path / "without" / day0.name, {PA: without_first_person})
    for s in (store, other_store):
        import_paths(s, [without])
    with other_store.write() as conn:
        conn.execute(delete(referential_print))
    fast = Labels()
    [by_prints] = import_paths(store, [day0], force=True, progress=fast)
    [by_lines] = import_paths(other_store, [day0], force=True)
    assert "Reading" not in fast.labels
    assert by_prints.counts["person"].created == 1
    assert by_prints.as_dict()["entities"] == by_lines.as_dict()["entities"]
    assert state(store) == state(other_store)


def test_a_helper_that_fails_leaves_the_files_to_the_importer(store, other_store, world, monkeypatch):
    import_paths(store, [ps_zip(world[0])])
    import_paths(other_store, [ps_zip(world[0])])
    with other_store.write() as conn:
        conn.execute(delete(referential_print))
    monkeypatch.setattr(importer, "AHEAD_MIN_SIZE", 0)
    monkeypatch.setattr(helper_process.sys, "executable", "/bin/false")
    labels = Labels()
    [by_prints] = import_paths(store, [ps_zip(world[1])], progress=labels)
    assert labels.labels.count("Reading") == 2  # both children files, read in process, in full
    [by_lines] = import_paths(other_store, [ps_zip(world[1])])
    assert by_prints.as_dict()["entities"] == by_lines.as_dict()["entities"]
    assert state(store) == state(other_store)
