"""Exports parse in standard parsers (vobject, csv, the ldif package) and round-trip."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import ldif
import pytest
import vobject
from click.testing import CliRunner

from annuaire.cli import cli
from annuaire.localsync.contacts import iter_contacts
from annuaire.localsync.db import LocalBase
from annuaire.localsync.export import OUTLOOK_HEADER, THUNDERBIRD_HEADER
from annuaire.localsync.filters import Filters
from annuaire.localsync.local import add_contact
from annuaire.localsync.sync import sync

from .helpers import standard_boxes, write_extraction


@pytest.fixture
def book(files, local_db) -> Path:
    sync(local_db, str(write_extraction(files, standard_boxes(), "202611250300")), Filters())
    with LocalBase.open(local_db) as base:
        add_contact(base, {"address": "camille.martin@medecin.mssante.fr", "mobile": "06 99 00 00 00",
                           "note": "Ligne 1\nLigne 2; avec, ponctuation"})
        add_contact(base, {"address": "accueil@clinique.example", "organisation": "Clinique Saint-Éloi",
                           "service": "Accueil", "phone": "04 99 00 00 00", "street": "1 rue des Fleurs",
                           "postcode": "69001", "city": "Lyon", "country": "France"})
        add_contact(base, {"address": "zoe.secretaire@clinique.example", "first_name": "Zoé", "last_name": "Lenom",
                           "title": "Secrétaire " + "très " * 20})
    return local_db


def _export(local_db: Path, fmt: str) -> bytes:
    result = CliRunner().invoke(cli, ["local-sync", "export", "--local", str(local_db), "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_vcard_4_parses_in_vobject(book):
    data = _export(book, "vcf")
    assert all(len(line) <= 75 for line in data.split(b"\r\n")), "lines must be folded at 75 octets"
    cards = list(vobject.readComponents(data.decode("utf-8")))
    assert len(cards) == 8  # 6 national (one merged with a local contact) + 2 local-only
    assert all(card.version.value == "4.0" for card in cards)
    by_mail = {card.email.value: card for card in cards if "email" in card.contents}
    merged = by_mail["camille.martin@medecin.mssante.fr"]
    assert merged.fn.value == "Camille MARTIN"
    assert merged.n.value.family == "MARTIN" and merged.n.value.given == "Camille"
    assert merged.org.value == ["CABINET MARTIN"]
    assert merged.title.value == "Médecin - Médecine générale"
    assert merged.note.value == "Ligne 1\nLigne 2; avec, ponctuation"
    assert merged.contents["x-annuaire-idnat"][0].value == "819900000017"
    assert merged.adr.value.city == "LYON" and merged.adr.value.code == "69002"
    org = by_mail["secretariat.cardio@ch-lyon.mssante.fr"]
    assert org.kind.value == "org" and org.org.value == ["CH DE LYON", "Cardiologie"]
    local = by_mail["accueil@clinique.example"]
    assert local.org.value == ["Clinique Saint-Éloi", "Accueil"]
    assert by_mail["zoe.secretaire@clinique.example"].title.value.startswith("Secrétaire très très")


def test_vcard_export_imports_back_to_the_same_contacts(book, tmp_path):
    vcf = tmp_path / "carnet.vcf"
    vcf.write_bytes(_export(book, "vcf"))
    copy = tmp_path / "copie.sqlite"
    result = CliRunner().invoke(cli, ["local-sync", "import-contacts", "--local", str(copy), str(vcf)])
    assert result.exit_code == 0, result.output
    assert "8 contact(s) added" in result.output
    with LocalBase.open(book) as base:
        original = {(c.email, c.display_name, c.organisation, c.service, c.phone, c.mobile, c.id_nat, c.note)
                    for c in iter_contacts(base.conn)}
    with LocalBase.open(copy) as base:
        copied = {(c.email, c.display_name, c.organisation, c.service, c.phone, c.mobile, c.id_nat, c.note)
                  for c in iter_contacts(base.conn)}
    assert copied == original


@pytest.mark.parametrize("fmt, header, email_column", [
    ("outlook-csv", OUTLOOK_HEADER, "E-mail Address"),
    ("thunderbird-csv", THUNDERBIRD_HEADER, "Primary Email"),
])
def test_csv_layouts_parse_with_python_csv(book, fmt, header, email_column, tmp_path):
    data = _export(book, fmt)
    assert data.startswith(b"\xef\xbb\xbf") == (fmt == "outlook-csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(rows[0].keys()) == header
    assert len(rows) == 8
    by_mail = {r[email_column]: r for r in rows}
    merged = by_mail["camille.martin@medecin.mssante.fr"]
    assert merged["First Name"] == "Camille" and merged["Last Name"] == "MARTIN"
    assert merged["Notes"] == "Ligne 1 Ligne 2; avec, ponctuation"
    assert by_mail["accueil@clinique.example"]["Department"] == "Accueil"
    # A mail client's export of this layout imports back as local contacts.
    path = tmp_path / f"{fmt}.csv"
    path.write_bytes(data)
    copy = tmp_path / "copie.sqlite"
    result = CliRunner().invoke(cli, ["local-sync", "import-contacts", "--local", str(copy), str(path)])
    assert result.exit_code == 0 and "8 contact(s) added" in result.output, result.output


def test_ldif_parses_with_an_ldif_parser(book):
    data = _export(book, "ldif")
    parser = ldif.LDIFParser(io.BytesIO(data))
    entries = list(parser.parse())
    assert len(entries) == 8
    dns = [dn for dn, _ in entries]
    assert "mail=camille.martin@medecin.mssante.fr,ou=contacts,o=carnet-local" in dns
    by_dn = dict(entries)
    merged = by_dn["mail=camille.martin@medecin.mssante.fr,ou=contacts,o=carnet-local"]
    assert merged["objectClass"] == ["top", "person", "organizationalPerson", "inetOrgPerson"]
    assert merged["cn"] == ["Camille MARTIN"] and merged["sn"] == ["MARTIN"]
    assert merged["mobile"] == ["06 99 00 00 00"]
    assert merged["description"] == ["Ligne 1\nLigne 2; avec, ponctuation"]  # base64 round trip
    clinic = by_dn["mail=accueil@clinique.example,ou=contacts,o=carnet-local"]
    assert clinic["o"] == ["Clinique Saint-Éloi"]
    assert clinic["postalAddress"] == ["1 rue des Fleurs$69001 Lyon$France"]


def test_export_to_a_file_and_custom_base_dn(book, tmp_path):
    out = tmp_path / "carnet.ldif"
    result = CliRunner().invoke(cli, ["local-sync", "export", "--local", str(book), "--format", "ldif",
                                      "-o", str(out), "--base-dn", "ou=carnet,dc=clinique,dc=example"])
    assert result.exit_code == 0, result.output
    assert "ou=carnet,dc=clinique,dc=example" in out.read_text()


def test_export_of_a_missing_base_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["local-sync", "export", "--local", str(tmp_path / "none.sqlite"), "--format", "vcf"])
    assert result.exit_code != 0 and "no such local address book" in " ".join(result.output.split())


def test_vcard_3_for_clients_that_only_read_3(book, tmp_path):
    data = _export(book, "vcf3")
    assert all(len(line) <= 75 for line in data.split(b"\r\n")), "lines must be folded at 75 octets"
    text = data.decode("utf-8")
    assert "KIND:" not in text and "PREF=1" not in text, "4.0-only property and parameter"
    cards = list(vobject.readComponents(text))
    assert len(cards) == 8
    for card in cards:
        assert card.version.value == "3.0"
        assert "n" in card.contents and "fn" in card.contents  # required by RFC 2426
    by_mail = {card.email.value: card for card in cards}
    merged = by_mail["camille.martin@medecin.mssante.fr"]
    assert merged.email.params["TYPE"] == ["INTERNET", "WORK", "PREF"]
    assert merged.n.value.family == "MARTIN" and merged.adr.value.city == "LYON"
    assert merged.note.value == "Ligne 1\nLigne 2; avec, ponctuation"
    assert [tel.params["TYPE"] for tel in merged.contents["tel"]] == [["CELL"]]
    org = by_mail["secretariat.cardio@ch-lyon.mssante.fr"]
    assert org.org.value == ["CH DE LYON", "Cardiologie"] and org.x_abshowas.value == "COMPANY"
    assert "x-abshowas" not in merged.contents
    # Read back, the 3.0 file gives the same contacts as the 4.0 one.
    vcf = tmp_path / "carnet3.vcf"
    vcf.write_bytes(data)
    copy = tmp_path / "copie.sqlite"
    result = CliRunner().invoke(cli, ["local-sync", "import-contacts", "--local", str(copy), str(vcf)])
    assert result.exit_code == 0 and "8 contact(s) added" in result.output, result.output
    fields = ("email", "display_name", "organisation", "service", "phone", "mobile", "id_nat", "note", "city")
    with LocalBase.open(book) as base:
        original = {tuple(getattr(c, f) for f in fields) for c in iter_contacts(base.conn)}
    with LocalBase.open(copy) as base:
        assert {tuple(getattr(c, f) for f in fields) for c in iter_contacts(base.conn)} == original
