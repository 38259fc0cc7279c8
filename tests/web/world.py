"""A small fictitious world for the web tests (every name invented).

Rows are written straight into the store so that each test knows exactly what
must and must not appear: accented names, a compound family name, a person
with two places, liste-rouge and inactive records, a `responsible` contact, a
structure whose name holds HTML, ORG/APP/CAB boxes. Some first names are in
capitals, as the national files carry them ("BÉNÉDICTE", "JEAN-PIERRE"), others
as people write them ("Hélène"); phone numbers are stored as the files give
them (ungrouped, with dots, international).
"""

from __future__ import annotations

from typing import Any

from annuaire.store import Store
from annuaire.store.keys import search_key
from annuaire.store.schema import activity, mailbox, person, skill, structure

NOW = "2026-01-05T03:00:00.000000Z"

# id_nat, first, last, profession code, label, civilité d'exercice, active
PEOPLE = [
    ("810000000011", "BÉNÉDICTE", "LEFÈVRE", "10", "Médecin", "Docteur", True),
    ("810000000028", "Hélène", "DUPONT", "60", "Infirmier", "", True),
    ("810000000035", "JEAN-PIERRE", "LE GOFF", "10", "Médecin", "Docteur", True),
    ("810000000042", "Camille", "MARTIN", "70", "Masseur-Kinésithérapeute", "", True),
    ("810000000059", "Zoé", "DUPONTEL", "21", "Pharmacien", "", True),
    ("810000000066", "Gaston", "DUPOND", "10", "Médecin", "Docteur", False),  # inactive
    ("810000000073", "Rose", "LAVAL", "50", "Sage-Femme", "", True),
    ("810000000080", "Noémie", "SECRETE", "10", "Médecin", "Docteur", True),  # only a liste rouge box
]
# tech_id, idnat, name, street, postcode, city, dept code, dept label
STRUCTURES = [
    ("F990000019", "1990000019", "CENTRE HOSPITALIER D'EXEMPLEVILLE", "12 RUE DE LA PAIX", "69003", "Lyon 3e Arrondissement", "69", "Rhône"),
    ("C99000000000017", "399000000000017", "CABINET <b>TEST</b> & ASSOCIES", "3 AVENUE DES TILLEULS", "33000", "Bordeaux", "33", "Gironde"),
    ("R99000000024", "499000000024", "CABINET DU PARC", "1 PLACE DU MARCHE", "53000", "Laval", "53", "Mayenne"),
]
PHONES = ["0123456780", "+33123456781", "01.23.45.67.82"]  # one per structure, as received
# person idx, structure idx, skill code, skill label, role label, mode label
ACTIVITIES = [
    (0, 0, "SM04", "Cardiologie et Maladies vasculaires", "", "Salarié"),
    (0, 1, "SM04", "Cardiologie et Maladies vasculaires", "Titulaire de cabinet", "Libéral, indépendant, artisan, commerçant"),
    (1, 0, "", "", "", "Salarié"),
    (2, 1, "SM54", "Médecine générale", "Titulaire de cabinet", "Libéral, indépendant, artisan, commerçant"),
    (3, 2, "", "", "", "Libéral, indépendant, artisan, commerçant"),
    (4, 1, "", "", "", "Salarié"),
    (5, 0, "SM54", "Médecine générale", "", "Salarié"),
    (6, 1, "", "", "", "Libéral, indépendant, artisan, commerçant"),
    (7, 0, "SM42", "Psychiatrie", "", "Salarié"),
]
# address, type, holder idx, structure idx, service, description, responsible, liste rouge, active
BOXES = [
    ("benedicte.lefevre@medecin.mssante.fr", "PER", 0, None, "", "", "", False, True),
    ("b.lefevre@ch-exempleville.mssante.fr", "PER", 0, 0, "", "", "", False, True),
    ("helene.dupont@infirmier.mssante.fr", "PER", 1, None, "", "", "", False, True),
    ("jean-pierre.le-goff@medecin.mssante.fr", "PER", 2, None, "", "", "", False, True),
    ("cabinet.legoff@medecin.mssante.fr", "CAB", 2, 1, "", "Secrétariat du cabinet", "", False, True),
    ("zoe.dupontel@pharmacien.mssante.fr", "PER", 4, None, "", "", "", False, True),
    ("gaston.dupond@medecin.mssante.fr", "PER", 5, None, "", "", "", False, True),  # holder inactive
    ("noemie.secrete@medecin.mssante.fr", "PER", 7, None, "", "", "", True, True),  # liste rouge
    ("camille.martin.old@medecin.mssante.fr", "PER", 3, None, "", "", "", False, False),  # deleted
    ("secretariat.cardio@ch-exempleville.mssante.fr", "ORG", None, 0, "Cardiologie", "Secrétariat de cardiologie", "M. Responsable Interne", False, True),
    ("dmp@ch-exempleville.mssante.fr", "APP", None, 0, "Informatique", "Logiciel de résultats", "", False, True),
    ("direction.confidentielle@ch-exempleville.mssante.fr", "ORG", None, 0, "Direction", "", "", True, True),  # liste rouge
]
RESPONSIBLE = "M. Responsable Interne"


def build(store: Store) -> None:
    """Write the world into an empty store."""
    common: dict[str, Any] = {"version": 1, "last_updated": NOW, "digest": 0}
    with store.write() as conn:
        conn.execute(
            person.insert(),
            [
                {
                    **common, "id": i + 1, "id_nat": id_nat, "id_type": "8", "id_pp": id_nat[1:],
                    "civilite_exercice_label": civ, "civilite_exercice_code": "DR" if civ else "",
                    "first_name": first, "last_name": last, "profession_code": code,
                    "profession_label": label, "category_code": "C", "category_label": "Civil",
                    "last_name_key": search_key(last), "first_name_key": search_key(first), "active": active,
                }
                for i, (id_nat, first, last, code, label, civ, active) in enumerate(PEOPLE)
            ],
        )
        conn.execute(
            structure.insert(),
            [
                {
                    **common, "id": i + 1, "tech_id": tech, "idnat": idnat, "name": name,
                    "street_name": street, "postcode": postcode, "commune_label": city,
                    "dept_code": dept, "dept_label": dept_label, "phone": PHONES[i],
                    "name_key": search_key(name), "city_key": search_key(city), "active": True,
                    "finess": idnat[1:] if idnat.startswith("1") else None,
                }
                for i, (tech, idnat, name, street, postcode, city, dept, dept_label) in enumerate(STRUCTURES)
            ],
        )
        conn.execute(
            activity.insert(),
            [
                {
                    **common, "id": i + 1, "key": f"{PEOPLE[p][0]}|{STRUCTURES[s][0]}|1", "person_id": p + 1,
                    "structure_id": s + 1, "profession_code": PEOPLE[p][3], "profession_label": PEOPLE[p][4],
                    "skill_code": sf or None, "skill_label": sf_label or None, "role_label": role or None,
                    "mode_label": mode, "active": True,
                }
                for i, (p, s, sf, sf_label, role, mode) in enumerate(ACTIVITIES)
            ],
        )
        skills = {(p, sf, label) for p, _, sf, label, _, _ in ACTIVITIES if sf}
        conn.execute(
            skill.insert(),
            [
                {
                    **common, "id": i + 1, "key": f"{PEOPLE[p][0]}|S|{sf}", "person_id": p + 1, "code": sf,
                    "label": label, "type_code": "S", "type_label": "Spécialité ordinale", "active": True,
                }
                for i, (p, sf, label) in enumerate(sorted(skills))
            ],
        )
        conn.execute(
            mailbox.insert(),
            [
                {
                    **common, "address": address, "domain": address.split("@")[1], "type": kind,
                    "holder": PEOPLE[h][0] if h is not None else None,
                    "structure_idnat": STRUCTURES[s][1] if s is not None else None,
                    "structure_type": STRUCTURES[s][1][0] if s is not None else None,
                    "structure": STRUCTURES[s][1][1:] if s is not None else None,
                    "service": service or None, "description": description or None,
                    "responsible": responsible or None, "liste_rouge": rouge, "source": "operator",
                    "active": active,
                }
                for address, kind, h, s, service, description, responsible, rouge, active in BOXES
            ],
        )
