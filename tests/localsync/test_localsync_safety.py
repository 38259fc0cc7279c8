"""Runs that cannot surprise: dry run, mass removals confirmed, filter codes checked against the tables."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from annuaire.cli import cli
from annuaire.errors import InvalidInput, MassDeletion
from annuaire.localsync.filters import Filters
from annuaire.localsync.sync import sync

from .helpers import box, dump, standard_boxes, write_extraction


def _boxes(count: int, dept: str, start: int = 0) -> list[list[str]]:
    return [
        box(f"service{i}@ch-{dept}.mssante.fr", type_="ORG", structure=f"1{dept}0000019", service=f"Service {i}",
            org=f"CH EXEMPLE {dept}", dept=dept, postcode=f"{dept}000", city="EXEMPLEVILLE")
        for i in range(start, start + count)
    ]


def _fingerprint(local_db: Path) -> dict[str, str]:
    """Every file of the local base (main file, WAL, shared memory) and its SHA-256."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(local_db.parent.glob(local_db.name + "*"))}


def _run(*args: str):
    return CliRunner().invoke(cli, ["local-sync", *args])


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_reports_the_changes_and_writes_nothing(files, local_db):
    lines = standard_boxes()
    sync(local_db, str(write_extraction(files, lines, "202611250300")), Filters())
    next_day = [list(line) for line in lines]
    next_day[2][7] = "Cardiologie et rythmologie"  # a service renamed
    del next_day[4]  # noel.petit's box deleted
    next_day.append(box("urgences@ch-lyon.mssante.fr", type_="ORG", structure="1690000019", service="Urgences",
                        org="CH DE LYON", dept="69"))
    zip_path = write_extraction(files, next_day, "202611260300")
    before, files_before = dump(local_db), _fingerprint(local_db)

    report = sync(local_db, str(zip_path), Filters(), dry_run=True)
    assert (report.dry_run, report.added, report.updated, report.removed, report.unchanged) == (True, 1, 1, 1, 4)
    assert report.would_add == ["urgences@ch-lyon.mssante.fr"]
    assert report.would_update == ["secretariat.cardio@ch-lyon.mssante.fr"]
    assert report.would_remove == ["noel.petit@infirmier.mssante.fr"]
    assert report.preview["update"] == [{"address": "secretariat.cardio@ch-lyon.mssante.fr",
                                         "name": "Cardiologie et rythmologie - CH DE LYON", "fields": ["service"]}]
    assert report.preview["remove"] == [{"address": "noel.petit@infirmier.mssante.fr", "name": "Noël PETIT"}]
    assert _fingerprint(local_db) == files_before, "a dry run must leave the local base byte-identical"
    assert dump(local_db) == before

    # The real run then does what the dry run said.
    real = sync(local_db, str(zip_path), Filters())
    assert (real.added, real.updated, real.removed) == (1, 1, 1)


def test_dry_run_through_the_command(files, local_db, tmp_path):
    sync(local_db, str(write_extraction(files, standard_boxes(), "202611250300")), Filters())
    files_before = _fingerprint(local_db)
    zip_path = write_extraction(files, standard_boxes()[:5], "202611260300")
    report_path = tmp_path / "rapport.json"
    result = _run("--source", str(zip_path), "--local", str(local_db), "--dry-run", "--report", str(report_path))
    assert result.exit_code == 0, result.output
    assert f"dry run: nothing written to {local_db}" in result.output
    assert "would add 0, update 0, remove 1; 5 unchanged" in result.output
    assert "  - robot@labo.sub.example.mssante.fr (Résultats - LABO EXEMPLE)" in result.output
    assert json.loads(report_path.read_text())["would_remove"] == ["robot@labo.sub.example.mssante.fr"]
    assert _fingerprint(local_db) == files_before


def test_dry_run_does_not_create_the_local_base(files, local_db):
    zip_path = write_extraction(files, standard_boxes(), "202611250300")
    report = sync(local_db, str(zip_path), Filters.build(departements=["69"]), dry_run=True)
    assert report.would_add == sorted(["camille.martin@medecin.mssante.fr", "camille.martin@ch-lyon.mssante.fr",
                                       "secretariat.cardio@ch-lyon.mssante.fr"])
    assert not local_db.exists() and list(local_db.parent.glob(local_db.name + "*")) == []


def test_dry_run_lists_the_first_contacts_and_counts_the_rest(files, local_db):
    result = _run("--source", str(write_extraction(files, _boxes(25, "59"), "202611250300")),
                  "--local", str(local_db), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.count("  + service") == 20
    assert "… and 5 more to add (full list with --report FILE)" in result.output


# --- mass removal ----------------------------------------------------------------------------


def test_a_changed_filter_removing_most_contacts_is_refused(files, local_db):
    zip_path = write_extraction(files, _boxes(30, "59") + _boxes(5, "62"), "202611250300")
    sync(local_db, str(zip_path), Filters.build(departements=["59"]))
    before, files_before = dump(local_db), _fingerprint(local_db)
    with pytest.raises(MassDeletion) as caught:
        sync(local_db, str(zip_path), Filters.build(departements=["62"]))
    message = str(caught.value)
    assert "would remove 30 of the 30 synchronised contacts (100%, more than 20%)" in message
    assert "the filters changed since the last synchronisation (departements=59 -> departements=62)" in message
    assert "Nothing was changed" in message and "--confirm-mass-removal" in message
    assert dump(local_db) == before and _fingerprint(local_db) == files_before
    # The dry run says the same, as a warning.
    preview = sync(local_db, str(zip_path), Filters.build(departements=["62"]), dry_run=True)
    assert preview.removed == 30 and "would be refused without --confirm-mass-removal" in preview.warnings[0]
    # Confirmed: applied.
    report = sync(local_db, str(zip_path), Filters.build(departements=["62"]), confirm_mass_removal=True)
    assert (report.added, report.removed) == (5, 30)


def test_a_truncated_extraction_is_refused_through_the_command(files, local_db):
    sync(local_db, str(write_extraction(files, _boxes(50, "59"), "202611250300")), Filters())
    before = dump(local_db)
    truncated = write_extraction(files, _boxes(12, "59"), "202611260300")
    result = _run("--source", str(truncated), "--local", str(local_db))
    assert result.exit_code == 5, result.output
    message = " ".join(result.output.split())
    assert "would remove 38 of the 50 synchronised contacts (76%" in message
    assert "the new extraction no longer holds them (12 lines, 12 selected" in message
    assert dump(local_db) == before
    result = _run("--source", str(truncated), "--local", str(local_db), "--confirm-mass-removal")
    assert result.exit_code == 0 and "removed 38" in result.output, result.output


@pytest.mark.parametrize("synced, kept, refused", [
    (40, 30, False),  # 10 removed (25 %): not more than 10
    (60, 49, False),  # 11 removed (18 %): not more than 20 %
    (50, 39, True),  # 11 removed (22 %)
    (5, 0, False),  # every contact of a small book: 5 is not more than 10
])
def test_mass_removal_thresholds(files, local_db, synced, kept, refused):
    sync(local_db, str(write_extraction(files, _boxes(synced, "59"), "202611250300")), Filters())
    next_day = write_extraction(files, _boxes(kept, "59"), "202611260300")
    if refused:
        with pytest.raises(MassDeletion):
            sync(local_db, str(next_day), Filters())
    else:
        assert sync(local_db, str(next_day), Filters()).removed == synced - kept


# --- filter codes ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--departement", "999"], "--departement '999': not a département code (01 to 95, 2A, 2B, 971 to 976); "
                                "list the valid codes with `annuaire local-sync codes departement`"),
    (["--profession", "11"], "--profession '11': not a profession code (TRE_G15"),
    (["--savoir-faire", "SM99"], "--savoir-faire 'SM99': not a savoir-faire code (TRE_R38"),
    (["--type", "BAL"], "--type 'BAL': not a mailbox type (TRE_R257: PER, ORG, APP or CAB)"),
    (["--domain", "ch exemple.fr"], "--domain 'ch exemple.fr' is not a mail domain"),
    (["--structure", "1690000019;DROP"], "--structure '1690000019;DROP' is not a structure id"),
])
def test_bad_filter_codes_are_refused_before_anything_is_opened(files, local_db, args, message):
    zip_path = write_extraction(files, standard_boxes(), "202611250300")
    result = _run("--source", str(zip_path), "--local", str(local_db), *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not local_db.exists()


def test_codes_are_normalised_and_listed():
    f = Filters.build(departements=["1", "2a", "971"], professions=["10"], savoir_faire=["sm54"], types=["org"])
    assert (f.departements, f.savoir_faire, f.types) == (("01", "2A", "971"), ("SM54",), ("ORG",))
    with pytest.raises(InvalidInput, match=r"'999', '20'"):
        Filters.build(departements=["59", "999", "20"])  # every bad value named; Corsica is 2A / 2B
    listing = _run("codes", "departement")
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert len(lines) == 101 and "59\tNord" in lines and "2A\tCorse-du-Sud" in lines
    professions = _run("codes", "profession").output.splitlines()
    assert "10\tMédecin" in professions
    assert "SM54\tMédecine générale" in _run("codes", "savoir-faire").output.splitlines()
