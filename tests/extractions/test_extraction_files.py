"""The two extractions, checked field by field, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from annuaire import formats
from annuaire.extractions import catalog
from annuaire.extractions.generate import generate, generate_one
from annuaire.extractions.snapshot import file_timestamp
from annuaire.nationalfiles.manifest import Manifest
from annuaire.store.clock import FORMAT

from .sample_data import SECRET_RESPONSIBLE

NOW = datetime(2026, 11, 25, 2, 0, 0, 123456, tzinfo=UTC)  # 03:00 in Paris (winter time)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _mssante_lines(outdir: Path, store) -> tuple[str, list[dict[str, str]]]:
    manifest = generate_one(store, outdir, formats.MSSANTE, NOW)
    members = _members(outdir / manifest.zip["name"])
    assert list(members) == ["Extraction_Correspondance_MSSante_202611250300.txt"]
    text = members["Extraction_Correspondance_MSSante_202611250300.txt"].decode("utf-8")
    header, *lines = text.split("\n")
    assert lines[-1] == ""  # every line ends with \n
    rows = []
    for line in lines[:-1]:
        fields = line.split("|")
        assert len(fields) == 31, line
        rows.append(dict(zip(formats.MSSANTE_COLUMNS, fields, strict=False)))
    return header, rows


def test_mssante_header_is_exactly_the_national_one(populated, outdir):
    header, _ = _mssante_lines(outdir, populated)
    assert header == (
        "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|"
        "Type identifiant structure|Identification Structure|Service de rattachement|"
        "Civilité d'exercice|Nom d'exercice|Prénom d'exercice|Catégorie profession|"
        "Libellé de catégorie profession|Code Profession|Libellé Profession|Code savoir-faire|"
        "Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|"
        "Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION structure BAL|"
        "L3COMPLEMENTDISTRIBUTION structure BAL|L4NUMEROVOIE structure BAL|"
        "L4COMPLEMENTNUMEROVOIE structure BAL|NL4TYPEVOIE structure BAL|"
        "L4LIBELLEVOIE structure BAL|L5LIEUDITMENTION structure BAL|"
        "L6LIGNEACHEMINEMENT structure BAL|Code postal structure BAL|"
        "Département structure BAL|Pays structure BAL"
    )


def test_mssante_lines_field_by_field(populated, outdir):
    _, rows = _mssante_lines(outdir, populated)
    by_address = {r["Adresse BAL"]: r for r in rows}
    assert len(by_address) == len(rows), "an address written twice"
    per = by_address["camille.martin@ch-exemple.mssante.fr"]
    assert per == {
        "Type de BAL": "PER",
        "Adresse BAL": "camille.martin@ch-exemple.mssante.fr",
        "Type Identifiant PP": "8",
        "Identifiant PP": "19900000017",
        "Identification nationale PP": "819900000017",
        "Type identifiant structure": "1",
        "Identification Structure": "990000019",
        "Service de rattachement": "",
        "Civilité d'exercice": "DR",
        "Nom d'exercice": "MARTIN",
        "Prénom d'exercice": "Camille",
        "Catégorie profession": "C",
        "Libellé de catégorie profession": "Civil",
        "Code Profession": "10",
        "Libellé Profession": "Médecin",
        "Code savoir-faire": "SM54",
        "Libellé savoir-faire": "Médecine générale",
        "Dématérialisation": "False",
        "Raison Sociale structure BAL": "CH EXEMPLE",  # not the stale duplicate sharing its idnat
        "Enseigne commerciale structure BAL": "",
        "L2COMPLEMENTLOCALISATION structure BAL": "Pôle Cœur",
        "L3COMPLEMENTDISTRIBUTION structure BAL": "Bâtiment B",
        "L4NUMEROVOIE structure BAL": "12",
        "L4COMPLEMENTNUMEROVOIE structure BAL": "",
        "NL4TYPEVOIE structure BAL": "R",
        "L4LIBELLEVOIE structure BAL": "DE LA PAIX",
        "L5LIEUDITMENTION structure BAL": "",
        "L6LIGNEACHEMINEMENT structure BAL": "99031 EXEMPLEVILLE CEDEX 1",
        "Code postal structure BAL": "99002",
        "Département structure BAL": "99",
        "Pays structure BAL": "FRANCE",
    }
    adeli = by_address["noel.petit@infirmier.mssante.fr"]
    assert (adeli["Type Identifiant PP"], adeli["Identifiant PP"], adeli["Identification nationale PP"]) == (
        "0", "990000013", "0990000013"
    )
    assert adeli["Identification Structure"] == "" and adeli["Raison Sociale structure BAL"] == ""
    assert by_address["helene.durand-leger@pharmacien.mssante.fr"]["Dématérialisation"] == ""
    org = by_address["secretariat.cardio@ch-exemple.mssante.fr"]
    assert org["Type de BAL"] == "ORG" and org["Identification nationale PP"] == "" and org["Nom d'exercice"] == ""
    assert org["Service de rattachement"] == "Cardiologie   USIC"  # a '|' in free text never breaks the line
    pharmacy = by_address["pharmacie.eglise@pharmacie.mssante.fr"]
    assert pharmacy["L6LIGNEACHEMINEMENT structure BAL"] == "99002 EXEMPLEVILLE"
    assert pharmacy["Département structure BAL"] == "2A"
    # attached to a structure unknown to the referential: hidden (the one visibility rule), as everywhere
    assert "robot@ch-exemple.mssante.fr" not in by_address


def test_mssante_never_holds_liste_rouge_deleted_or_responsible(populated, outdir):
    manifest = generate_one(populated, outdir, formats.MSSANTE, NOW)
    raw = b"".join(_members(outdir / manifest.zip["name"]).values()).decode()
    assert "cachee@" not in raw and "Service caché" not in raw
    assert "supprimee@" not in raw
    assert SECRET_RESPONSIBLE not in raw and "responsable" not in raw.lower()
    assert manifest.files[0]["lines"] == 6


def _ps_members(outdir: Path, store) -> dict[str, list[list[str]]]:
    manifest = generate_one(store, outdir, formats.PS_LIBRE_ACCES, NOW)
    members = _members(outdir / manifest.zip["name"])
    assert list(members) == [
        "PS_LibreAcces_Personne_activite_202611250300.txt",
        "PS_LibreAcces_SavoirFaire_202611250300.txt",
        "PS_LibreAcces_Dipl_AutExerc_202611250300.txt",
    ]
    out = {}
    for name, data in members.items():
        lines = data.decode("utf-8").split("\n")
        assert lines[-1] == ""
        for line in lines[:-1]:
            assert line.endswith("|"), f"{name}: no trailing '|': {line}"
        out[name.rsplit("_", 1)[0]] = [line.split("|")[:-1] for line in lines[:-1]]
    return out


def test_ps_libreacces_headers_and_trailing_separator(populated, outdir):
    files = _ps_members(outdir, populated)
    assert tuple(files[formats.PERSONNE_ACTIVITE][0]) == formats.PERSONNE_ACTIVITE_COLUMNS
    assert len(formats.PERSONNE_ACTIVITE_COLUMNS) == 56
    assert tuple(files[formats.SAVOIR_FAIRE][0]) == formats.SAVOIR_FAIRE_COLUMNS
    assert tuple(files[formats.DIPLOMES][0]) == formats.DIPLOMES_COLUMNS
    for name, rows in files.items():
        for row in rows:
            assert len(row) == len(rows[0]), (name, row)


def test_ps_libreacces_activity_lines_rebuilt_from_person_activity_structure(populated, outdir):
    rows = _ps_members(outdir, populated)[formats.PERSONNE_ACTIVITE]
    header, data = rows[0], [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    assert header[0] == "Type d'identifiant PP"
    # Camille MARTIN: two activities; Hélène: her inactive activity is gone; Noël: no activity;
    # Paul ANCIEN (inactive person) absent.
    assert [(r["Identification nationale PP"], r["Identifiant technique de la structure"]) for r in data] == [
        ("819900000017", "C99000000000012"),
        ("819900000017", "F990000019"),
        ("819900000025", "F990000027"),
        ("0990000013", ""),
    ]
    hospital = data[1]
    expected = {
        "Type d'identifiant PP": "8", "Identifiant PP": "19900000017", "Code civilité d'exercice": "DR",
        "Libellé civilité d'exercice": "Docteur", "Code civilité": "M", "Libellé civilité": "Monsieur",
        "Nom d'exercice": "MARTIN", "Prénom d'exercice": "Camille", "Code profession": "10",
        "Libellé profession": "Médecin", "Code catégorie professionnelle": "C",
        "Libellé catégorie professionnelle": "Civil", "Code type savoir-faire": "S",
        "Libellé type savoir-faire": "Spécialité ordinale", "Code savoir-faire": "SM26",
        "Libellé savoir-faire": "Cardiologie", "Code mode exercice": "L", "Libellé mode exercice": "Libéral",
        "Numéro SIRET site": "", "Numéro SIREN site": "", "Numéro FINESS site": "990000019",
        "Numéro FINESS établissement juridique": "990000001", "Raison sociale site": "CH EXEMPLE",
        "Enseigne commerciale site": "", "Complément destinataire (coord. structure)": "Pôle Cœur",
        "Complément point géographique (coord. structure)": "Bâtiment B", "Numéro Voie (coord. structure)": "12",
        "Indice répétition voie (coord. structure)": "", "Code type de voie (coord. structure)": "R",
        "Libellé type de voie (coord. structure)": "Rue", "Libellé Voie (coord. structure)": "DE LA PAIX",
        "Mention distribution (coord. structure)": "", "Bureau cedex (coord. structure)": "99031 EXEMPLEVILLE CEDEX 1",
        "Code postal (coord. structure)": "99002", "Code commune (coord. structure)": "99102",
        "Libellé commune (coord. structure)": "Exempleville", "Code pays (coord. structure)": "99000",
        "Libellé pays (coord. structure)": "FRANCE", "Téléphone (coord. structure)": "0199000000",
        "Téléphone 2 (coord. structure)": "", "Télécopie (coord. structure)": "",
        "Adresse e-mail (coord. structure)": "", "Code Département (structure)": "99",
        "Libellé Département (structure)": "Exemple", "Ancien identifiant de la structure": "1990000019",
        "Autorité d'enregistrement": "CNOM/CNOM/ARS", "Code secteur d'activité": "",
        "Libellé secteur d'activité": "", "Code section tableau pharmaciens": "",
        "Libellé section tableau pharmaciens": "", "Code rôle": "", "Libellé rôle": "",
        "Code genre activité": "GENR01", "Libellé genre activité": "Activité standard",
    }
    assert {k: hospital[k] for k in expected} == expected
    no_activity = data[3]
    assert no_activity["Nom d'exercice"] == "PETIT" and no_activity["Code profession"] == "60"
    assert all(no_activity[c] == "" for c in formats.PERSONNE_ACTIVITE_COLUMNS[13:])


def test_ps_libreacces_skill_and_diploma_files_hold_active_records_only(populated, outdir):
    files = _ps_members(outdir, populated)
    assert files[formats.SAVOIR_FAIRE][1:] == [
        ["8", "19900000017", "819900000017", "MARTIN", "Camille", "10", "Médecin", "C", "Civil", "S",
         "Spécialité ordinale", "SM54", "Médecine générale"]
    ]
    assert files[formats.DIPLOMES][1:] == [
        ["8", "19900000017", "819900000017", "MARTIN", "Camille", "DE", "Diplôme d'Etat", "DE09",
         "DE Docteur en médecine", "", "", "", ""]
    ]


def test_manifests_describe_the_files(populated, outdir):
    manifests = generate(populated, outdir, now=NOW)
    assert [m.name for m in manifests] == [formats.MSSANTE, formats.PS_LIBRE_ACCES]
    for manifest in manifests:
        path = outdir / manifest.file_name
        assert path.name == f"{manifest.name}_202611250300.json"
        on_disk = Manifest.read(path)
        assert on_disk == manifest
        assert json.loads(path.read_text())["generated_at"] == "2026-11-25T02:00:00.123456Z"
        datetime.strptime(manifest.generated_at, FORMAT)
        zip_path = outdir / manifest.zip["name"]
        assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == manifest.zip["sha256"]
        assert zip_path.stat().st_size == manifest.zip["bytes"]
        members = _members(zip_path)
        for f in manifest.files:
            data = members[f["name"]]
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
            assert data.count(b"\n") - 1 == f["lines"]
            assert len(data) == f["bytes"]
    assert [f["lines"] for f in manifests[1].files] == [4, 1, 1]
    assert sorted(p.name for p in outdir.iterdir()) == sorted(
        [m.zip["name"] for m in manifests] + [m.file_name for m in manifests]
    ), "temporary files left behind"


def test_file_timestamp_is_paris_time():
    assert file_timestamp("2026-07-01T01:30:00.000000Z") == "202607010330"  # summer: UTC+2
    assert file_timestamp("2026-12-31T23:30:00.000000Z") == "202701010030"  # winter: UTC+1, next day


def test_a_failing_writer_leaves_nothing(populated, outdir, monkeypatch):
    from annuaire.extractions import generate as gen

    def boom(conn, archive):
        member = archive.member(formats.MSSANTE, "header\n")
        member.write_text("a partial line", 1)
        raise RuntimeError("disk full")

    monkeypatch.setitem(gen.WRITERS, formats.MSSANTE, boom)
    with pytest.raises(RuntimeError):
        generate_one(populated, outdir, formats.MSSANTE, NOW)
    assert list(outdir.iterdir()) == []
    assert catalog.latest(outdir, formats.MSSANTE) is None


def test_catalog_lists_complete_extractions_and_prunes_old_ones(populated, outdir):
    from datetime import timedelta

    days = [NOW - timedelta(days=d) for d in (9, 8, 1, 0)]
    for moment in days:
        generate(populated, outdir, now=moment)
    # A zip without its manifest (still being written) is not offered.
    (outdir / "Extraction_Correspondance_MSSante_209901010000.zip").write_bytes(b"partial")
    entries = catalog.list_extractions(outdir, formats.MSSANTE)
    assert [e.ts for e in entries] == ["202611160300", "202611170300", "202611240300", "202611250300"]
    assert catalog.latest(outdir, formats.MSSANTE).ts == "202611250300"
    removed = catalog.prune(outdir, keep_days=7, now=NOW)
    assert len(removed) == 8  # 2 days x 2 extractions x (zip + manifest)
    assert [e.ts for e in catalog.list_extractions(outdir, formats.PS_LIBRE_ACCES)] == ["202611240300", "202611250300"]
    # The newest always stays, however old.
    catalog.prune(outdir, keep_days=0, now=NOW + timedelta(days=30))
    assert [e.ts for e in catalog.list_extractions(outdir, formats.MSSANTE)] == ["202611250300"]


def test_extract_command(populated, outdir):
    from click.testing import CliRunner

    from annuaire.cli import cli

    result = CliRunner().invoke(cli, ["--db", populated.url, "-q", "extract", str(outdir), "--only", "mssante"])
    assert result.exit_code == 0, result.output
    assert "Extraction_Correspondance_MSSante_" in result.output and "6 lines" in result.output
    assert [e.name for e in catalog.list_extractions(outdir)] == [formats.MSSANTE]


def test_structure_columns_are_the_tail_of_the_mssante_layout():
    from annuaire.extractions import mssante

    tail = formats.MSSANTE_COLUMNS[mssante.HEAD_COLUMNS:]
    assert tail[0] == "Raison Sociale structure BAL" and tail[-1] == "Pays structure BAL"
    assert len(tail) == mssante.STRUCTURE_COLUMNS
