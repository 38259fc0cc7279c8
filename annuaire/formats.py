"""The exact layouts of the national public extraction files.

One place for every header: the importer, the generator and the extraction
writer all use these tuples, so a layout can only be wrong once.
See ../shared/spec/extractions.md.
"""

from __future__ import annotations

import re

SEPARATOR = "|"

PERSONNE_ACTIVITE = "PS_LibreAcces_Personne_activite"
SAVOIR_FAIRE = "PS_LibreAcces_SavoirFaire"
DIPLOMES = "PS_LibreAcces_Dipl_AutExerc"
PS_LIBRE_ACCES = "PS_LibreAcces"
MSSANTE = "Extraction_Correspondance_MSSante"

# 56 columns; the older (2021-2022) layout stops after the first 52.
PERSONNE_ACTIVITE_COLUMNS: tuple[str, ...] = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Code civilité d'exercice",
    "Libellé civilité d'exercice",
    "Code civilité",
    "Libellé civilité",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Libellé mode exercice",
    "Numéro SIRET site",
    "Numéro SIREN site",
    "Numéro FINESS site",
    "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
    "Code pays (coord. structure)",
    "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)",
    "Code Département (structure)",
    "Libellé Département (structure)",
    "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
    "Code secteur d'activité",
    "Libellé secteur d'activité",
    "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens",
    "Code rôle",
    "Libellé rôle",
    "Code genre activité",
    "Libellé genre activité",
)
PERSONNE_ACTIVITE_COLUMNS_OLD: tuple[str, ...] = PERSONNE_ACTIVITE_COLUMNS[:52]

SAVOIR_FAIRE_COLUMNS: tuple[str, ...] = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
)

DIPLOMES_COLUMNS: tuple[str, ...] = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code type diplôme obtenu",
    "Libellé type diplôme obtenu",
    "Code diplôme obtenu",
    "Libellé diplôme obtenu",
    "Code type autorisation",
    "Libellé type autorisation",
    "Code discipline autorisation",
    "Libellé discipline autorisation",
)

# 31 columns, no trailing separator in the real file (tolerated when reading).
MSSANTE_COLUMNS: tuple[str, ...] = (
    "Type de BAL",
    "Adresse BAL",
    "Type Identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Type identifiant structure",
    "Identification Structure",
    "Service de rattachement",
    "Civilité d'exercice",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Catégorie profession",
    "Libellé de catégorie profession",
    "Code Profession",
    "Libellé Profession",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Dématérialisation",
    "Raison Sociale structure BAL",
    "Enseigne commerciale structure BAL",
    "L2COMPLEMENTLOCALISATION structure BAL",
    "L3COMPLEMENTDISTRIBUTION structure BAL",
    "L4NUMEROVOIE structure BAL",
    "L4COMPLEMENTNUMEROVOIE structure BAL",
    "NL4TYPEVOIE structure BAL",
    "L4LIBELLEVOIE structure BAL",
    "L5LIEUDITMENTION structure BAL",
    "L6LIGNEACHEMINEMENT structure BAL",
    "Code postal structure BAL",
    "Département structure BAL",
    "Pays structure BAL",
)

TIMESTAMP_FORMAT = "%Y%m%d%H%M"
_NAME_RE = re.compile(
    r"^(?P<name>PS_LibreAcces_Personne_activite|PS_LibreAcces_SavoirFaire|PS_LibreAcces_Dipl_AutExerc"
    r"|PS_LibreAcces|Extraction_Correspondance_MSSante)_(?P<ts>\d{12})\.(?P<ext>txt|zip|json)$"
)


def parse_file_name(name: str) -> tuple[str, str] | None:
    """Return (kind, timestamp) for a national file name, or None."""
    m = _NAME_RE.match(name.rsplit("/", 1)[-1])
    if not m:
        return None
    return m.group("name"), m.group("ts")


def file_name(kind: str, ts: str, ext: str = "txt") -> str:
    """`PS_LibreAcces_Personne_activite_202611250300.txt` and friends."""
    return f"{kind}_{ts}.{ext}"


def header_line(columns: tuple[str, ...], trailing: bool) -> str:
    return SEPARATOR.join(columns) + (SEPARATOR if trailing else "") + "\n"
