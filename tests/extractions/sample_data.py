"""A small fictitious referential and mailbox set, inserted directly in the store.

Everything here is invented. The cases that matter for the extractions:
a person with two activities, one without activity, an inactive person, an
inactive activity, a liste rouge mailbox, an inactive (deleted) mailbox, a
mailbox with a `responsible`, ORG boxes with and without a structure, two
structures sharing one idnat, accents, and a '|' in a free-text field.
"""

from __future__ import annotations

from annuaire.store.clock import utc_now
from annuaire.store.keys import search_key
from annuaire.store.schema import activity, diploma, mailbox, person, skill, structure

SECRET_RESPONSIBLE = "responsable.secret@example.invalid"


def _rec(**values):
    return {"active": True, "version": 1, "last_updated": utc_now(), "digest": 0, **values}


def _person(id_, id_nat, last, first, prof=("10", "Médecin"), civ_ex=("DR", "Docteur"), active=True):
    return _rec(
        id=id_, id_nat=id_nat, id_type=id_nat[0], id_pp=id_nat[1:],
        civilite_code="M", civilite_label="Monsieur",
        civilite_exercice_code=civ_ex[0], civilite_exercice_label=civ_ex[1],
        last_name=last, first_name=first,
        profession_code=prof[0], profession_label=prof[1],
        category_code="C", category_label="Civil",
        last_name_key=search_key(last), first_name_key=search_key(first), active=active,
    )


def _structure(id_, tech_id, idnat, name, **more):
    base = {
        "id": id_, "tech_id": tech_id, "idnat": idnat, "siret": None, "siren": None, "finess": None, "finess_ej": None,
        "name": name, "sign": None, "addressee": None, "geo_complement": None, "street_number": "12",
        "street_repetition": None, "street_type_code": "R", "street_type_label": "Rue", "street_name": "DE LA PAIX",
        "distribution_mention": None, "cedex_office": None, "postcode": "99002", "commune_code": "99102",
        "commune_label": "Exempleville", "country_code": "99000", "country_label": "FRANCE",
        "phone": "0199000000", "phone2": None, "fax": None, "email": None, "dept_code": "99", "dept_label": "Exemple",
        "name_key": search_key(name), "city_key": "exempleville",
    }
    base.update(more)
    return _rec(**base)


def _activity(id_, key, person_id, structure_id, skill=("SM54", "Médecine générale"), active=True, prof=("10", "Médecin")):
    return _rec(
        id=id_, key=key, person_id=person_id, structure_id=structure_id,
        profession_code=prof[0], profession_label=prof[1], category_code="C", category_label="Civil",
        skill_type_code="S" if skill[0] else None, skill_type_label="Spécialité ordinale" if skill[0] else None,
        skill_code=skill[0], skill_label=skill[1], mode_code="L", mode_label="Libéral",
        sector_code=None, sector_label=None, pharma_section_code=None, pharma_section_label=None,
        role_code=None, role_label=None, genre_code="GENR01", genre_label="Activité standard",
        registration_authority="CNOM/CNOM/ARS", active=active,
    )


def _mailbox(address, type_, holder=None, st=None, **more):
    values = {
        "address": address, "domain": address.split("@")[1], "type": type_, "holder": holder,
        "structure_type": st[0] if st else None, "structure": st[1:] if st else None, "structure_idnat": st,
        "service": None, "description": None, "responsible": None, "liste_rouge": False, "rank": None,
        "dematerialisation": True, "source": "operator", "run_id": None,
    }
    values.update(more)
    return _rec(**values)


def populate(store) -> None:
    persons = [
        _person(1, "819900000017", "MARTIN", "Camille"),
        _person(2, "819900000025", "DURAND-LÉGER", "Hélène", prof=("21", "Pharmacien"), civ_ex=(None, None)),
        _person(3, "0990000013", "PETIT", "Noël", prof=("60", "Infirmier"), civ_ex=(None, None)),  # ADELI, no activity
        _person(4, "819900000033", "ANCIEN", "Paul", active=False),
    ]
    structures = [
        _structure(1, "F990000019", "1990000019", "CH EXEMPLE", finess="990000019", finess_ej="990000001",
                   cedex_office="99031 EXEMPLEVILLE CEDEX 1", addressee="Pôle Cœur", geo_complement="Bâtiment B"),
        _structure(2, "C99000000000012", "399000000000012", "CABINET MARTIN", siret="99000000000012", siren="990000000"),
        _structure(3, "F990000027", "1990000027", "PHARMACIE DE L'ÉGLISE", finess="990000027", dept_code="2A"),
        # A second site record sharing idnat 1990000019 (stale duplicate): must not duplicate lines.
        _structure(4, "R99000000001", "1990000019", "CH EXEMPLE DOUBLON"),
    ]
    activities = [
        _activity(1, "819900000017|C99000000000012|1", 1, 2),
        _activity(2, "819900000017|F990000019|1", 1, 1, skill=("SM26", "Cardiologie")),
        _activity(3, "819900000025|F990000027|1", 2, 3, skill=(None, None), prof=("21", "Pharmacien")),
        _activity(4, "819900000025|F990000019|1", 2, 1, skill=(None, None), prof=("21", "Pharmacien"), active=False),
        _activity(5, "819900000033||1", 4, None, active=False),
    ]
    skills = [
        _rec(id=1, key="819900000017|S|SM54", person_id=1, profession_code="10", profession_label="Médecin",
             category_code="C", category_label="Civil", type_code="S", type_label="Spécialité ordinale",
             code="SM54", label="Médecine générale"),
        _rec(id=2, key="819900000033|S|SM54", person_id=4, profession_code="10", profession_label="Médecin",
             category_code="C", category_label="Civil", type_code="S", type_label="Spécialité ordinale",
             code="SM54", label="Médecine générale"),
    ]
    diplomas = [
        _rec(id=1, key="819900000017|DE|1", person_id=1, type_code="DE", type_label="Diplôme d'Etat",
             code="DE09", label="DE Docteur en médecine", auth_type_code=None, auth_type_label=None,
             auth_discipline_code=None, auth_discipline_label=None),
        _rec(id=2, key="819900000025|DE|1", person_id=2, type_code="DE", type_label="Diplôme d'Etat",
             code="DE13", label="DE Docteur en pharmacie", auth_type_code=None, auth_type_label=None,
             auth_discipline_code=None, auth_discipline_label=None, active=False),
    ]
    mailboxes = [
        _mailbox("camille.martin@medecin.mssante.fr", "PER", holder="819900000017", st="399000000000012"),
        _mailbox("camille.martin@ch-exemple.mssante.fr", "PER", holder="819900000017", st="1990000019",
                 dematerialisation=False),
        _mailbox("helene.durand-leger@pharmacien.mssante.fr", "PER", holder="819900000025", dematerialisation=None),
        _mailbox("noel.petit@infirmier.mssante.fr", "PER", holder="0990000013"),
        _mailbox("secretariat.cardio@ch-exemple.mssante.fr", "ORG", st="1990000019", service="Cardiologie | USIC",
                 description="Secrétariat", responsible=SECRET_RESPONSIBLE),
        _mailbox("cachee@ch-exemple.mssante.fr", "ORG", st="1990000019", liste_rouge=True, service="Service caché"),
        _mailbox("supprimee@ch-exemple.mssante.fr", "ORG", st="1990000019", active=False),
        _mailbox("robot@ch-exemple.mssante.fr", "APP", st="1990000099", service="Automate"),
        _mailbox("pharmacie.eglise@pharmacie.mssante.fr", "ORG", st="1990000027"),
    ]
    with store.write() as conn:
        conn.execute(person.insert(), persons)
        conn.execute(structure.insert(), structures)
        conn.execute(activity.insert(), activities)
        conn.execute(skill.insert(), skills)
        conn.execute(diploma.insert(), diplomas)
        conn.execute(mailbox.insert(), mailboxes)
