"""Synchronising a local base: additions, updates, removals, filters, idempotency, bad input."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import pytest

from annuaire.errors import ImportFileError, InvalidInput
from annuaire.localsync.db import LocalBase
from annuaire.localsync.filters import Filters
from annuaire.localsync.source import SourceUnavailable
from annuaire.localsync.sync import sync

from .helpers import box, dump, standard_boxes, write_extraction

NO_FILTER = Filters()


def _addresses(local_db: Path) -> set[str]:
    with sqlite3.connect(local_db) as conn:
        return {row[0] for row in conn.execute("SELECT address FROM national")}


def test_first_sync_adds_everything(files, local_db):
    zip_path = write_extraction(files, standard_boxes(), "202611250300")
    report = sync(local_db, str(zip_path), NO_FILTER)
    assert (report.status, report.lines, report.selected, report.added, report.updated, report.removed) == (
        "ok", 6, 6, 6, 0, 0
    )
    assert report.extraction_ts == "202611250300"
    with sqlite3.connect(local_db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM national WHERE address = 'helene.leger@pharmacien.mssante.fr'").fetchone()
    assert (row["last_name"], row["first_name"], row["departement"], row["structure"]) == (
        "LÉGER", "Hélène", "01", "1010000027"
    )
    assert (row["cn_key"], row["last_name_key"], row["org_key"]) == ("helene leger", "leger", "pharmacie de l eglise")


def test_same_extraction_twice_changes_nothing(files, local_db):
    zip_path = write_extraction(files, standard_boxes(), "202611250300")
    sync(local_db, str(zip_path), NO_FILTER)
    before = dump(local_db)
    again = sync(local_db, str(zip_path), NO_FILTER)
    assert again.status == "unchanged"
    forced = sync(local_db, str(zip_path), NO_FILTER, force=True)
    assert (forced.added, forced.updated, forced.removed, forced.unchanged) == (0, 0, 0, 6)
    assert dump(local_db) == before


def test_next_day_applies_only_the_changes(files, local_db):
    lines = standard_boxes()
    sync(local_db, str(write_extraction(files, lines, "202611250300")), NO_FILTER)
    with sqlite3.connect(local_db) as conn:
        rowids = dict(conn.execute("SELECT address, rowid FROM national"))
    next_day = [list(line) for line in lines]
    next_day[2][7] = "Cardiologie et rythmologie"  # service renamed: its name key changes too
    next_day[0][28] = "69009"  # the structure moved: updated in place, no key changes
    del next_day[4]  # noel.petit's box deleted
    next_day.append(box("Nouvelle.Boite@CH-Lyon.mssante.fr", type_="ORG", structure="1690000019",
                        service="Urgences", org="CH DE LYON", dept="69"))
    report = sync(local_db, str(write_extraction(files, next_day, "202611260300")), NO_FILTER)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 2, 1, 3)
    assert _addresses(local_db) == {line[1].lower() for line in next_day}
    with sqlite3.connect(local_db) as conn:
        after = dict(conn.execute("SELECT address, rowid FROM national"))
        service, cn_key = conn.execute("SELECT service, cn_key FROM national WHERE address LIKE 'secretariat%'").fetchone()
        postcode = conn.execute("SELECT postcode FROM national WHERE address = ?", (lines[0][1],)).fetchone()[0]
    assert (service, cn_key) == ("Cardiologie et rythmologie", "cardiologie et rythmologie ch de lyon")
    assert postcode == "69009"
    untouched = ["camille.martin@ch-lyon.mssante.fr", "helene.leger@pharmacien.mssante.fr"]
    assert all(after[a] == rowids[a] for a in untouched), "unchanged lines were rewritten"


def test_duplicate_addresses_in_the_file_are_kept_once(files, local_db):
    lines = standard_boxes()
    lines.append(box("CAMILLE.MARTIN@medecin.mssante.fr", id_nat="819900000017", last="MARTIN", first="Camille"))
    report = sync(local_db, str(write_extraction(files, lines, "202611250300")), NO_FILTER)
    assert (report.lines, report.selected, report.duplicate_lines) == (7, 6, 1)


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"departements": ["69"]}, {"camille.martin@medecin", "camille.martin@ch-lyon", "secretariat.cardio@ch-lyon"}),
        ({"departements": ["1", "75"]}, {"helene.leger@pharmacien", "robot@labo.sub.example"}),
        ({"professions": ["10"]}, {"camille.martin@medecin", "camille.martin@ch-lyon"}),
        ({"savoir_faire": ["sm26"]}, {"camille.martin@ch-lyon"}),
        ({"domains": ["example.mssante.fr"]}, {"robot@labo.sub.example"}),
        ({"domains": ["mssante.fr"]}, None),  # every box: all are under mssante.fr
        ({"domains": ["ch-lyon.mssante.fr,infirmier.mssante.fr"]},
         {"camille.martin@ch-lyon", "secretariat.cardio@ch-lyon", "noel.petit@infirmier"}),
        ({"structures": ["1690000019"]}, {"camille.martin@ch-lyon", "secretariat.cardio@ch-lyon"}),
        ({"structures": ["690000019"]}, {"camille.martin@ch-lyon", "secretariat.cardio@ch-lyon"}),
        ({"types": ["org", "APP"]}, {"secretariat.cardio@ch-lyon", "robot@labo.sub.example"}),
        ({"departements": ["69"], "types": ["PER"], "professions": ["10"]},
         {"camille.martin@medecin", "camille.martin@ch-lyon"}),
        ({"departements": ["69"], "professions": ["21"]}, set()),
    ],
)
def test_filters(files, local_db, filters, expected):
    lines = standard_boxes()
    report = sync(local_db, str(write_extraction(files, lines, "202611250300")), Filters.build(**filters))
    got = {a.rsplit(".mssante.fr", 1)[0] for a in _addresses(local_db)}
    if expected is None:
        expected = {line[1].rsplit(".mssante.fr", 1)[0] for line in lines}
    assert got == expected
    assert report.selected == len(expected)


def test_changing_the_filters_removes_what_is_no_longer_selected(files, local_db):
    zip_path = write_extraction(files, standard_boxes(), "202611250300")
    sync(local_db, str(zip_path), NO_FILTER)
    report = sync(local_db, str(zip_path), Filters.build(types=["ORG"]))
    assert report.status == "ok"  # same file, new filters: applied, not skipped
    assert (report.removed, report.unchanged) == (5, 1)
    assert _addresses(local_db) == {"secretariat.cardio@ch-lyon.mssante.fr"}


def test_bad_filter_value_is_named():
    with pytest.raises(InvalidInput, match="--type 'BAL'"):
        Filters.build(types=["BAL"])


# --- bad input: a clear message and the local base unchanged ---------------------


@pytest.fixture
def synced(files, local_db):
    sync(local_db, str(write_extraction(files, standard_boxes(), "202611240300")), NO_FILTER)
    return dump(local_db)


def _corrupt_variants(files: Path) -> dict[str, tuple[Path, str]]:
    lines = standard_boxes()
    out: dict[str, tuple[Path, str]] = {}
    bad = files / "bad"
    bad.mkdir()
    not_zip = bad / "Extraction_Correspondance_MSSante_202611250300.zip"
    not_zip.write_bytes(b"this is not a zip file at all")
    out["not a zip"] = (not_zip, "not a readable zip")
    good = write_extraction(files / "good", lines * 50, "202611250300", manifest=False)
    truncated = files / "truncated" / good.name
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    out["truncated"] = (truncated, "zip")
    wrong_header = files / "header" / good.name
    wrong_header.parent.mkdir()
    with zipfile.ZipFile(wrong_header, "w") as z:
        z.writestr("Extraction_Correspondance_MSSante_202611250300.txt", "Type de BAL|Adresse|Autre\nPER|a@b.fr|x\n")
    out["wrong header"] = (wrong_header, "header")
    short = [list(line) for line in lines]
    short[3] = short[3][:20]
    out["wrong field count"] = (write_extraction(files / "fields", short, "202611250300", manifest=False), "line 5: 20 fields")
    empty_address = [list(line) for line in lines]
    empty_address[1][1] = ""
    out["empty address"] = (write_extraction(files / "address", empty_address, "202611250300", manifest=False), "line 3")
    mismatch = write_extraction(files / "sha", lines, "202611250300")
    other = write_extraction(files / "sha-other", lines[:5], "202611250300")
    mismatch.write_bytes(other.read_bytes())  # the manifest beside it describes another zip
    out["sha-256 mismatch"] = (mismatch, "SHA-256")
    return out


def test_bad_input_leaves_the_base_unchanged(files, local_db, synced):
    for case, (path, message) in _corrupt_variants(files).items():
        with pytest.raises(ImportFileError, match=message):
            sync(local_db, str(path), NO_FILTER)
        assert dump(local_db) == synced, case


def test_manifest_line_count_is_checked(files, local_db, synced):
    import json

    path = write_extraction(files / "count", standard_boxes(), "202611250300")
    manifest_path = path.with_suffix(".json")
    data = json.loads(manifest_path.read_text())
    data["files"][0]["lines"] = 99
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ImportFileError, match="6 data lines where the manifest announces 99"):
        sync(local_db, str(path), NO_FILTER)
    assert dump(local_db) == synced


def test_missing_file_is_a_clear_error(local_db, tmp_path):
    with pytest.raises(SourceUnavailable, match="no such file"):
        sync(local_db, str(tmp_path / "nothing.zip"), NO_FILTER)


def test_the_national_store_is_refused_as_local_base(tmp_path):
    from annuaire.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    store.dispose()
    with pytest.raises(InvalidInput, match="not a local address book"):
        LocalBase.open(tmp_path / "annuaire.sqlite")


def test_trailing_separator_is_tolerated(files, local_db):
    path = write_extraction(files, standard_boxes(), "202611250300", trailing=True)
    assert sync(local_db, str(path), NO_FILTER).added == 6


def test_in_place_updates_know_every_indexed_column(local_db):
    """A row updated in place must not change an indexed column (sync._INDEXED lists them)."""
    from annuaire.localsync import sync as sync_module

    with LocalBase.open(local_db) as base:
        indexes = [row[1] for row in base.conn.execute("PRAGMA index_list(national)")]
        indexed = {col[2] for name in indexes for col in base.conn.execute(f"PRAGMA index_info('{name}')")}
    assert indexed - {"address"} == set(sync_module._INDEXED)


def test_latin1_and_crlf_extraction_is_read(files, local_db):
    """Old national files: latin-1, Windows line ends, columns in another order."""
    from annuaire import formats

    columns = list(formats.MSSANTE_COLUMNS)
    order = [1, 0, *range(2, len(columns))]  # 'Adresse BAL' first
    lines = ["|".join(columns[i] for i in order)]
    lines += ["|".join(line[i] for i in order) for line in standard_boxes()]
    path = files / "Extraction_Correspondance_MSSante_202001010300.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Extraction_Correspondance_MSSante_202001010300.txt", "\r\n".join(lines).encode("latin-1") + b"\r\n")
    report = sync(local_db, str(path), NO_FILTER)
    assert report.added == 6
    with sqlite3.connect(local_db) as conn:
        name = conn.execute("SELECT first_name, last_name FROM national WHERE address LIKE 'helene%'").fetchone()
    assert name == ("Hélène", "LÉGER")
