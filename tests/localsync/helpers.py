"""Small fictitious MSSanté extractions for the local sync tests, and a dump of a local base."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from annuaire import formats
from annuaire.extractions.manifest import publish
from annuaire.extractions.package import AtomicArchive


def box(
    address: str,
    type_: str = "PER",
    id_nat: str = "",
    structure: str = "",
    service: str = "",
    last: str = "",
    first: str = "",
    profession: tuple[str, str] = ("", ""),
    skill: tuple[str, str] = ("", ""),
    org: str = "",
    dept: str = "",
    postcode: str = "",
    city: str = "",
) -> list[str]:
    """One line of the extraction (31 fields), fictitious values."""
    l6 = f"{postcode} {city}".strip()
    return [
        type_, address, id_nat[:1], id_nat[1:], id_nat, structure[:1], structure[1:], service,
        "DR" if profession[0] == "10" else "", last, first, "C" if profession[0] else "",
        "Civil" if profession[0] else "", profession[0], profession[1], skill[0], skill[1], "True",
        org, "", "", "", "3" if org else "", "", "R" if org else "", "DES LILAS" if org else "", "", l6,
        postcode, dept, "FRANCE" if org else "",
    ]


def standard_boxes() -> list[list[str]]:
    """A few boxes in two départements, several professions and types."""
    return [
        box("camille.martin@medecin.mssante.fr", id_nat="819900000017", structure="399000000000012",
            last="MARTIN", first="Camille", profession=("10", "Médecin"), skill=("SM54", "Médecine générale"),
            org="CABINET MARTIN", dept="69", postcode="69002", city="LYON"),
        box("camille.martin@ch-lyon.mssante.fr", id_nat="819900000017", structure="1690000019",
            last="MARTIN", first="Camille", profession=("10", "Médecin"), skill=("SM26", "Cardiologie"),
            org="CH DE LYON", dept="69", postcode="69003", city="LYON"),
        box("secretariat.cardio@ch-lyon.mssante.fr", type_="ORG", structure="1690000019", service="Cardiologie",
            org="CH DE LYON", dept="69", postcode="69003", city="LYON"),
        box("helene.leger@pharmacien.mssante.fr", id_nat="819900000025", structure="1010000027",
            last="LÉGER", first="Hélène", profession=("21", "Pharmacien"), org="PHARMACIE DE L'ÉGLISE",
            dept="01", postcode="01000", city="BOURG-EN-BRESSE"),
        box("noel.petit@infirmier.mssante.fr", id_nat="0990000013", last="PETIT", first="Noël",
            profession=("60", "Infirmier")),
        box("robot@labo.sub.example.mssante.fr", type_="APP", structure="1750000035", service="Résultats",
            org="LABO EXEMPLE", dept="75", postcode="75015", city="PARIS"),
    ]


def write_extraction(outdir: Path, lines: list[list[str]], ts: str, manifest: bool = True, trailing: bool = False) -> Path:
    """`Extraction_Correspondance_MSSante_<ts>.zip` (+ its manifest) holding `lines`."""
    with AtomicArchive(outdir, formats.MSSANTE, ts) as archive:
        member = archive.member(formats.MSSANTE, formats.header_line(formats.MSSANTE_COLUMNS, trailing))
        end = (formats.SEPARATOR if trailing else "") + "\n"
        member.write_lines(formats.SEPARATOR.join(line) + end for line in lines)
        member.close()
    if manifest:
        publish(outdir, formats.MSSANTE, ts, "2026-11-25T02:00:00.000000Z", archive.info)
    return archive.path


def dump(path: Path) -> dict[str, list[tuple]]:
    """Everything a user could see in the local base (meta and run log excluded)."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in ("national", "local_contact", "link")
        }
    finally:
        conn.close()
