"""Local contacts: never touched by a sync, merged (not duplicated), duplicates reported."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from annuaire.errors import InvalidInput
from annuaire.localsync.contacts import iter_contacts
from annuaire.localsync.db import LocalBase
from annuaire.localsync.filters import Filters
from annuaire.localsync.local import add_contact, import_file
from annuaire.localsync.sync import sync

from .helpers import box, standard_boxes, write_extraction


def _local_rows(local_db: Path) -> list[tuple]:
    with sqlite3.connect(local_db) as conn:
        return conn.execute("SELECT * FROM local_contact ORDER BY id").fetchall()


def _contacts(local_db: Path):
    with LocalBase.open(local_db) as base:
        return list(iter_contacts(base.conn))


def test_local_contacts_are_never_touched_by_a_sync(files, local_db):
    with LocalBase.open(local_db) as base:
        add_contact(base, {"address": "Secretariat@Clinique.example", "organisation": "Clinique du Parc",
                           "phone": "04 99 00 00 00"})
        add_contact(base, {"address": "camille.martin@medecin.mssante.fr", "first_name": "Camille",
                           "last_name": "Martin", "mobile": "06 99 00 00 00", "note": "préfère le matin"})
        add_contact(base, {"address": "jean.dupuis@cabinet.example", "first_name": "Jean", "last_name": "Dupuis",
                           "organisation": "Cabinet"})
    before = _local_rows(local_db)
    sync(local_db, str(write_extraction(files, standard_boxes(), "202611250300")), Filters())
    assert _local_rows(local_db) == before
    # The national twin of a local contact disappears: the local contact stays as it was.
    sync(local_db, str(write_extraction(files, standard_boxes()[1:], "202611260300")), Filters())
    assert _local_rows(local_db) == before
    emails = [c.email for c in _contacts(local_db)]
    assert "camille.martin@medecin.mssante.fr" in emails and "secretariat@clinique.example" in emails


def test_same_address_is_merged_keeping_local_fields_where_national_has_none(files, local_db):
    with LocalBase.open(local_db) as base:
        add_contact(base, {"address": "camille.martin@medecin.mssante.fr", "first_name": "Cam",
                           "last_name": "Martin", "mobile": "06 99 00 00 00", "note": "préfère le matin",
                           "organisation": "Ancien nom"})
    report = sync(local_db, str(write_extraction(files, standard_boxes(), "202611250300")), Filters())
    assert [(m["address"], m["reason"]) for m in report.merges] == [("camille.martin@medecin.mssante.fr", "same address")]
    contacts = [c for c in _contacts(local_db) if c.email == "camille.martin@medecin.mssante.fr"]
    assert len(contacts) == 1, "merged contacts must appear once"
    merged = contacts[0]
    assert merged.origin == "merged"
    assert (merged.first_name, merged.organisation) == ("Camille", "CABINET MARTIN")  # national wins
    assert (merged.mobile, merged.note) == ("06 99 00 00 00", "préfère le matin")  # local kept
    assert len(_contacts(local_db)) == 6


def test_same_national_id_and_structure_is_merged(files, local_db):
    sync(local_db, str(write_extraction(files, standard_boxes(), "202611250300")), Filters())
    with LocalBase.open(local_db) as base:
        report = add_contact(base, {"address": "c.martin@ancien-cabinet.example", "first_name": "Camille",
                                    "last_name": "MARTIN", "id_nat": "19900000017",  # RPPS without its 8
                                    "structure": "1690000019", "phone": "04 78 00 00 00"})
    assert report.merges == [{"local_id": 1, "local_name": "Camille MARTIN",
                              "address": "camille.martin@ch-lyon.mssante.fr",
                              "reason": "same national id and structure"}]
    merged = [c for c in _contacts(local_db) if c.origin == "merged"]
    assert len(merged) == 1
    assert merged[0].email == "camille.martin@ch-lyon.mssante.fr"
    assert merged[0].other_emails == ["c.martin@ancien-cabinet.example"]
    assert merged[0].phone == "04 78 00 00 00"
    assert len(_contacts(local_db)) == 6


def test_suspected_duplicates_are_reported_not_merged(files, local_db):
    with LocalBase.open(local_db) as base:
        add_contact(base, {"address": "cmartin@autre.example", "first_name": "Camille", "last_name": "Martín",
                           "structure": "399000000000012"})
        add_contact(base, {"address": "h.leger@perso.example", "first_name": "HELENE", "last_name": "Léger",
                           "organisation": "Pharmacie de l'Eglise"})
        second = add_contact(base, {"address": "helene@autre.example", "first_name": "Hélène", "last_name": "LEGER",
                                    "organisation": "PHARMACIE DE L EGLISE"})
    assert [(d["local_id"], d["other_local_id"]) for d in second.suspected_duplicates] == [(2, 3)]
    lines = standard_boxes()
    lines.append(box("c.martin2@medecin.mssante.fr", id_nat="819900000017", structure="399000000000012",
                     last="MARTIN", first="Camille", org="CABINET MARTIN", dept="69"))
    report = sync(local_db, str(write_extraction(files, lines, "202611250300")), Filters())
    assert report.merges == []
    pairs = {(d["local_address"], d.get("national_address") or d.get("other_local_address"))
             for d in report.suspected_duplicates["local"]}
    assert pairs == {
        ("cmartin@autre.example", "camille.martin@medecin.mssante.fr"),
        ("cmartin@autre.example", "c.martin2@medecin.mssante.fr"),
        ("h.leger@perso.example", "helene.leger@pharmacien.mssante.fr"),
        ("helene@autre.example", "helene.leger@pharmacien.mssante.fr"),
        ("h.leger@perso.example", "helene@autre.example"),
    }
    assert report.suspected_duplicates["national_groups"] == 1
    assert sorted(report.suspected_duplicates["national_examples"][0]["addresses"]) == [
        "c.martin2@medecin.mssante.fr", "camille.martin@medecin.mssante.fr"
    ]
    assert len(_contacts(local_db)) == 7 + 3


@pytest.mark.parametrize(
    "values, message",
    [
        ({"address": "not-an-address"}, "is not a mail address"),
        ({"address": "a b@c.fr"}, "is not a mail address"),
        ({"phone": "0102030405", "last_name": "Sansadresse"}, "contact: no mail address"),
        ({"last_name": "x" * 501}, "longer than 500"),
        ({"nickname": "x"}, "unknown field"),
    ],
)
def test_bad_local_contact_is_refused(local_db, values, message):
    with LocalBase.open(local_db) as base, pytest.raises(InvalidInput, match=message):
        add_contact(base, values)
    assert _local_rows(local_db) == []


def test_import_csv_in_several_layouts_is_idempotent(tmp_path, local_db):
    generic = tmp_path / "contacts.csv"
    generic.write_text(
        "email;prénom;nom;établissement;téléphone;RPPS\n"
        "dr.dupont@cabinet.example;Jeanne;DUPONT;Cabinet Dupont;04 00 00 00 01;19900000041\n"
        "\n"
        "accueil@clinique.example;;;Clinique;04 00 00 00 02;\n",
        encoding="utf-8",
    )
    with LocalBase.open(local_db) as base:
        first = import_file(base, generic)
        again = import_file(base, generic)
    assert (first.added, first.skipped, again.added, again.skipped) == (2, 0, 0, 2)
    rows = {c.email: c for c in _contacts(local_db)}
    assert rows["dr.dupont@cabinet.example"].id_nat == "819900000041"
    assert rows["dr.dupont@cabinet.example"].organisation == "Cabinet Dupont"
    assert rows["accueil@clinique.example"].display_name == "Clinique"


def test_import_is_all_or_nothing(tmp_path, local_db):
    bad = tmp_path / "bad.csv"
    bad.write_text("email,first_name\nok@example.org,A\nnot-an-address,B\n", encoding="utf-8")
    with LocalBase.open(local_db) as base, pytest.raises(InvalidInput, match=r"bad.csv, line 3: 'not-an-address'"):
        import_file(base, bad)
    assert _local_rows(local_db) == []
    unknown = tmp_path / "contacts.xlsx"
    unknown.write_bytes(b"PK")
    with LocalBase.open(local_db) as base, pytest.raises(InvalidInput, match="unknown contact file type"):
        import_file(base, unknown)
    garbage = tmp_path / "broken.vcf"
    garbage.write_text("BEGIN:VCARD\nVERSION:4.0\nthis is not a property line\n", encoding="utf-8")
    with LocalBase.open(local_db) as base, pytest.raises(InvalidInput, match="broken.vcf"):
        import_file(base, garbage)
    assert _local_rows(local_db) == []
