"""From a line of the national files to the values of our tables.

Each mapping names the file column (by header name) that feeds each store
column; the importer and the extraction writer share them, so the layout is
described once.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter

from annuaire.store.keys import search_key

# store column -> header name, in the store's column order.
PERSON = {
    "id_type": "Type d'identifiant PP",
    "id_pp": "Identifiant PP",
    "civilite_code": "Code civilité",
    "civilite_label": "Libellé civilité",
    "civilite_exercice_code": "Code civilité d'exercice",
    "civilite_exercice_label": "Libellé civilité d'exercice",
    "last_name": "Nom d'exercice",
    "first_name": "Prénom d'exercice",
    "profession_code": "Code profession",
    "profession_label": "Libellé profession",
    "category_code": "Code catégorie professionnelle",
    "category_label": "Libellé catégorie professionnelle",
}
PERSON_KEYS = ("last_name_key", "first_name_key")

STRUCTURE = {
    "idnat": "Ancien identifiant de la structure",
    "siret": "Numéro SIRET site",
    "siren": "Numéro SIREN site",
    "finess": "Numéro FINESS site",
    "finess_ej": "Numéro FINESS établissement juridique",
    "name": "Raison sociale site",
    "sign": "Enseigne commerciale site",
    "addressee": "Complément destinataire (coord. structure)",
    "geo_complement": "Complément point géographique (coord. structure)",
    "street_number": "Numéro Voie (coord. structure)",
    "street_repetition": "Indice répétition voie (coord. structure)",
    "street_type_code": "Code type de voie (coord. structure)",
    "street_type_label": "Libellé type de voie (coord. structure)",
    "street_name": "Libellé Voie (coord. structure)",
    "distribution_mention": "Mention distribution (coord. structure)",
    "cedex_office": "Bureau cedex (coord. structure)",
    "postcode": "Code postal (coord. structure)",
    "commune_code": "Code commune (coord. structure)",
    "commune_label": "Libellé commune (coord. structure)",
    "country_code": "Code pays (coord. structure)",
    "country_label": "Libellé pays (coord. structure)",
    "phone": "Téléphone (coord. structure)",
    "phone2": "Téléphone 2 (coord. structure)",
    "fax": "Télécopie (coord. structure)",
    "email": "Adresse e-mail (coord. structure)",
    "dept_code": "Code Département (structure)",
    "dept_label": "Libellé Département (structure)",
}
STRUCTURE_KEYS = ("name_key", "city_key")

ACTIVITY = {
    "profession_code": "Code profession",
    "profession_label": "Libellé profession",
    "category_code": "Code catégorie professionnelle",
    "category_label": "Libellé catégorie professionnelle",
    "skill_type_code": "Code type savoir-faire",
    "skill_type_label": "Libellé type savoir-faire",
    "skill_code": "Code savoir-faire",
    "skill_label": "Libellé savoir-faire",
    "mode_code": "Code mode exercice",
    "mode_label": "Libellé mode exercice",
    "sector_code": "Code secteur d'activité",
    "sector_label": "Libellé secteur d'activité",
    "pharma_section_code": "Code section tableau pharmaciens",
    "pharma_section_label": "Libellé section tableau pharmaciens",
    "role_code": "Code rôle",
    "role_label": "Libellé rôle",
    "genre_code": "Code genre activité",
    "genre_label": "Libellé genre activité",
    "registration_authority": "Autorité d'enregistrement",
}

SKILL = {
    "profession_code": "Code profession",
    "profession_label": "Libellé profession",
    "category_code": "Code catégorie professionnelle",
    "category_label": "Libellé catégorie professionnelle",
    "type_code": "Code type savoir-faire",
    "type_label": "Libellé type savoir-faire",
    "code": "Code savoir-faire",
    "label": "Libellé savoir-faire",
}

DIPLOMA = {
    "type_code": "Code type diplôme obtenu",
    "type_label": "Libellé type diplôme obtenu",
    "code": "Code diplôme obtenu",
    "label": "Libellé diplôme obtenu",
    "auth_type_code": "Code type autorisation",
    "auth_type_label": "Libellé type autorisation",
    "auth_discipline_code": "Code discipline autorisation",
    "auth_discipline_label": "Libellé discipline autorisation",
}

ID_NAT = "Identification nationale PP"
TECH_ID = "Identifiant technique de la structure"

# Columns checked against the nomenclatures: header name of the code -> TRE table.
CODED_COLUMNS = {
    "Code profession": "TRE_G15-ProfessionSante",
    "Code catégorie professionnelle": "TRE_R09-CategorieProfessionnelle",
    "Code type savoir-faire": "TRE_R04-TypeSavoirFaire",
    "Code savoir-faire": "TRE_R38-SpecialiteOrdinale",
    "Code mode exercice": "TRE_R23-ModeExercice",
    "Code secteur d'activité": "TRE_R02-SecteurActivite",
    "Code rôle": "TRE_R21-Fonction",
    "Code genre activité": "TRE_R22-GenreActivite",
    "Code civilité d'exercice": "TRE_R11-CiviliteExercice",
    "Code civilité": "Civilite",
}


def picker(index: dict[str, int], wanted: dict[str, str]) -> Callable[[list[str]], tuple[str, ...]]:
    """A fast function taking the wanted columns of a line, in the store's order.

    Columns absent from an older layout read the empty field that the reader
    appends after the last column (index len(header)).
    """
    missing = len(index)
    get = itemgetter(*(index.get(header, missing) for header in wanted.values()))
    return get


class _NameKeys(dict):
    """Search keys of names, computed once each: a national file repeats 150 k last names over
    1.95 M persons, more than `search_key`'s own cache keeps for the servers' queries (and a
    dict lookup costs 0.3 µs less than an lru_cache hit: 1.2 s of a national import)."""

    LIMIT = 1 << 18

    def __missing__(self, name: str) -> str:
        if len(self) >= self.LIMIT:
            self.clear()
        key = self[name] = search_key.__wrapped__(name)
        return key


_name_key = _NameKeys()


def person_keys(values: tuple[str, ...]) -> tuple[str, str]:
    """Search keys of a person row (PERSON column order)."""
    return _name_key[values[6]], _name_key[values[7]]


def structure_keys(values: tuple[str, ...]) -> tuple[str, str]:
    """Search keys of a structure row (STRUCTURE column order)."""
    return _name_key[values[5]], _name_key[values[18]]

# Everything that decides the records derived from a line (referential.prints.VERSION).
MAPPINGS = (PERSON, PERSON_KEYS, STRUCTURE, STRUCTURE_KEYS, ACTIVITY, SKILL, DIPLOMA, ID_NAT, TECH_ID)
