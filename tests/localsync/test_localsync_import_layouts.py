"""Importing the CSV exports of mail clients, in English and French: every field lands in its place.

The header lines in `client_headers/` are the lines the clients write (rows here are fictitious):
Thunderbird's 37 columns in English (the layout of export.THUNDERBIRD_HEADER) and French (which
repeats "Ville" and "Code postal": home address first, work address second); the 92 columns of
Outlook's desktop export in English and French (where "Titre" is both the civility and the job
title); the labels Apple Contacts reads from a text file (tab-separated).
"""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from annuaire.cli import cli
from annuaire.errors import InvalidInput
from annuaire.localsync.db import LOCAL_FIELDS, LocalBase
from annuaire.localsync.local import import_file

HEADERS = Path(__file__).parent / "client_headers"

CAMILLE = {
    "address": "camille.martin@clinique-exemple.fr", "first_name": "Camille", "last_name": "Martin",
    "organisation": "Clinique Exemple", "service": "Cardiologie", "title": "Cardiologue",
    "phone": "04 99 00 00 01", "mobile": "06 99 00 00 01", "street": "3 rue des Lilas",
    "postcode": "69003", "city": "EXEMPLEVILLE", "country": "France", "note": "Préfère être appelée le matin",
}
NOEL = {"address": "noel.petit@cabinet-exemple.fr", "first_name": "Noël", "last_name": "Petit",
        "organisation": "Cabinet Petit"}

# Per client: file encoding, the column of each field, and home-address columns that must NOT be read.
LAYOUTS = {
    "thunderbird-en": ("utf-8", {
        "address": "Primary Email", "first_name": "First Name", "last_name": "Last Name",
        "display_name": "Display Name", "organisation": "Organization", "service": "Department",
        "title": "Job Title", "phone": "Work Phone", "mobile": "Mobile Number", "street": "Work Address",
        "postcode": "Work ZipCode", "city": "Work City", "country": "Work Country", "note": "Notes",
    }, {"Home City": "AUTREVILLE", "Home ZipCode": "01000", "Secondary Email": "perso@autre.example"}),
    "thunderbird-fr": ("cp1252", {
        "address": "Adresse électronique principale", "first_name": "Prénom", "last_name": "Nom de famille",
        "display_name": "Nom à afficher", "organisation": "Société", "service": "Service", "title": "Profession",
        "phone": "Tél. professionnel", "mobile": "Portable", "street": "Adresse professionnelle",
        "postcode": "Code postal#2", "city": "Ville#2", "country": "Pays/Région (bureau)", "note": "Notes",
    }, {"Ville": "AUTREVILLE", "Code postal": "01000", "Tél. personnel": "04 00 00 00 09",
        "Adresse électronique secondaire": "perso@autre.example"}),
    "outlook-en": ("cp1252", {
        "address": "E-mail Address", "first_name": "First Name", "last_name": "Last Name",
        "organisation": "Company", "service": "Department", "title": "Job Title", "phone": "Business Phone",
        "mobile": "Mobile Phone", "street": "Business Street", "postcode": "Business Postal Code",
        "city": "Business City", "country": "Business Country/Region", "note": "Notes",
    }, {"Title": "Dr", "Home City": "AUTREVILLE", "E-mail 2 Address": "perso@autre.example",
        "E-mail Display Name": "Camille Martin (camille.martin@clinique-exemple.fr)"}),
    "outlook-fr": ("cp1252", {
        "address": "Adresse de messagerie", "first_name": "Prénom", "last_name": "Nom", "organisation": "Société",
        "service": "Service", "title": "Titre#2", "phone": "Téléphone (bureau)", "mobile": "Tél. mobile",
        "street": "Rue (bureau)", "postcode": "Code postal (bureau)", "city": "Ville (bureau)",
        "country": "Pays/Région (bureau)", "note": "Notes",
    }, {"Titre": "Dr", "Ville (domicile)": "AUTREVILLE", "Adresse de messagerie 2": "perso@autre.example"}),
    "apple": ("utf-8", {
        "address": "email (work)", "first_name": "first", "last_name": "last", "organisation": "company",
        "service": "department", "title": "job title", "phone": "phone (work)", "mobile": "phone (mobile)",
        "street": "address (work) street", "postcode": "address (work) zip", "city": "address (work) city",
        "country": "address (work) country", "note": "note",
    }, {}),
}


def _position(header: list[str], spec: str) -> int:
    """Index of column `Name` or `Name#n` (its n-th occurrence), by exact name."""
    name, _, nth = spec.partition("#")
    return [i for i, h in enumerate(header) if h == name][int(nth or 1) - 1]


def client_file(path: Path, client: str, rows: list[dict[str, str]], header_line: str | None = None) -> Path:
    """A file as `client` writes it: its real header line, then `rows` ({column spec: value})."""
    encoding = LAYOUTS[client][0]
    header_line = header_line or (HEADERS / f"{client}.csv").read_text(encoding="utf-8").rstrip("\n")
    delimiter = "\t" if client == "apple" else ","
    header = next(csv.reader([header_line], delimiter=delimiter))
    out = io.StringIO()
    quoting = csv.QUOTE_ALL if header_line.startswith('"') else csv.QUOTE_MINIMAL
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    for values in rows:
        row = [""] * len(header)
        for spec, value in values.items():
            row[_position(header, spec)] = value
        writer.writerow(row)
    path.write_bytes((header_line + "\r\n" + out.getvalue()).encode(encoding))
    return path


def _row(client: str, contact: dict[str, str], decoys: bool = True) -> dict[str, str]:
    _, columns, others = LAYOUTS[client]
    values = {columns[f]: v for f, v in contact.items() if f in columns}
    return {**values, **(others if decoys else {})}


def _stored(local_db: Path) -> dict[str, dict[str, str | None]]:
    with sqlite3.connect(local_db) as conn:
        rows = conn.execute(f"SELECT {', '.join(LOCAL_FIELDS)} FROM local_contact").fetchall()
    return {row[0]: dict(zip(LOCAL_FIELDS, row, strict=True)) for row in rows}


@pytest.mark.parametrize("client", list(LAYOUTS))
def test_a_mail_client_export_imports_every_field(client, tmp_path, local_db):
    camille = dict(CAMILLE, display_name="Dr Camille Martin") if "display_name" in LAYOUTS[client][1] else CAMILLE
    path = client_file(tmp_path / f"{client}.csv", client, [_row(client, camille), _row(client, NOEL, False)])
    with LocalBase.open(local_db) as base:
        report = import_file(base, path)
    assert (report.added, report.skipped) == (2, 0)
    stored = _stored(local_db)
    got = {f: v for f, v in stored[CAMILLE["address"]].items() if v is not None}
    assert got == camille  # and nothing from the home address, the civility or the second address
    assert {f: v for f, v in stored[NOEL["address"]].items() if v is not None} == NOEL


def test_older_french_thunderbird_label_is_recognised(tmp_path, local_db):
    line = (HEADERS / "thunderbird-fr.csv").read_text(encoding="utf-8").rstrip("\n")
    older = line.replace("Adresse électronique principale", "Première adresse électronique")
    columns = LAYOUTS["thunderbird-fr"][1]
    row = {("Première adresse électronique" if c == columns["address"] else c): v
           for c, v in _row("thunderbird-fr", CAMILLE).items()}
    path = client_file(tmp_path / "ancien.csv", "thunderbird-fr", [row], header_line=older)
    with LocalBase.open(local_db) as base:
        import_file(base, path)
    assert _stored(local_db)[CAMILLE["address"]]["organisation"] == "Clinique Exemple"


def test_french_thunderbird_file_through_the_command(tmp_path, local_db):
    """The reported case: '1 contact added' with the address, the name and the organisation dropped."""
    path = client_file(tmp_path / "carnet-thunderbird.csv", "thunderbird-fr",
                       [_row("thunderbird-fr", CAMILLE), _row("thunderbird-fr", NOEL, False)])
    result = CliRunner().invoke(cli, ["local-sync", "import-contacts", "--local", str(local_db), str(path)])
    assert result.exit_code == 0, result.output
    assert "2 contact(s) added" in result.output
    stored = _stored(local_db)
    assert (stored[NOEL["address"]]["last_name"], stored[NOEL["address"]]["organisation"]) == ("Petit", "Cabinet Petit")


def test_a_line_without_address_is_refused_with_its_line(tmp_path, local_db):
    rows = [
        _row("thunderbird-fr", CAMILLE),
        _row("thunderbird-fr", dict(NOEL, note="Deux lignes\nde note")),  # a quoted field over two lines
        _row("thunderbird-fr", {"first_name": "Jean", "last_name": "Sansadresse", "organisation": "Cabinet"}),
    ]
    path = client_file(tmp_path / "carnet.csv", "thunderbird-fr", rows)
    result = CliRunner().invoke(cli, ["local-sync", "import-contacts", "--local", str(local_db), str(path)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert 'carnet.csv, line 5: no e-mail address in column "Adresse électronique principale"' in message
    assert _stored(local_db) == {}, "nothing is imported when one line is refused"


@pytest.mark.parametrize("header", ["Name;Phone;Comment", "prénom;nom;société", "First Name,Last Name,Company"])
def test_a_header_without_email_column_names_the_expected_columns(header, tmp_path, local_db):
    path = tmp_path / "contacts.csv"
    path.write_text(f"{header}\nCamille;Martin;Clinique\n", encoding="utf-8")
    with LocalBase.open(local_db) as base, pytest.raises(InvalidInput) as caught:
        import_file(base, path)
    message = str(caught.value)
    assert "contacts.csv: no e-mail column in the header" in message
    for expected in ('"Primary Email"', '"Adresse électronique principale"', '"E-mail Address"',
                     '"Adresse de messagerie"', '"email"'):
        assert expected in message
    assert _stored(local_db) == {}


def test_a_vcard_without_email_is_refused_with_its_card(tmp_path, local_db):
    path = tmp_path / "carnet.vcf"
    path.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Camille Martin\r\nN:Martin;Camille;;;\r\n"
        "EMAIL;TYPE=INTERNET:camille.martin@clinique-exemple.fr\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jean Sansadresse\r\nN:Sansadresse;Jean;;;\r\nTEL:0499000000\r\nEND:VCARD\r\n",
        encoding="utf-8",
    )
    with LocalBase.open(local_db) as base, pytest.raises(InvalidInput, match=r"card 2 \(Jean Sansadresse\): no mail"):
        import_file(base, path)
    assert _stored(local_db) == {}
