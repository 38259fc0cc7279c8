"""Fictitious test data written straight into the store tables (a few hundred mailboxes).

Deterministic (seeded). Besides random people it holds the named ones the
tests rely on, and liste rouge / deleted boxes whose names match the same
filters, so that any leak shows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import insert

from annuaire.store import Store
from annuaire.store.keys import search_key
from annuaire.store.schema import journal, mailbox, person, skill, structure

NOW = "2026-01-01T00:00:00.000000Z"
FIRST = ["Camille", "Hélène", "Éric", "Zoé", "François", "Noël", "Jean", "Jeanne", "Marie", "Pierre", "Léa",
         "Chloé", "Louis", "Gaëlle", "Anaïs", "Jérôme", "Benoît", "Inès", "Théo", "Mathilde"]
LAST = ["MARTIN", "BERNARD", "LEFÈVRE", "DUBOIS", "MOREAU", "LAURENT", "SIMON", "MICHEL", "GARCIA", "DAVID",
        "BERTRAND", "ROUX", "VINCENT", "FOURNIER", "MOREL", "GIRARD", "ANDRÉ", "MERCIER", "BLANC", "GUÉRIN"]
PROFESSIONS = [("10", "Médecin"), ("21", "Pharmacien"), ("40", "Chirurgien-Dentiste"), ("60", "Infirmier"),
               ("50", "Sage-Femme"), ("70", "Masseur-Kinésithérapeute")]
SKILLS = [("SM54", "Médecine générale"), ("SM04", "Cardiologie et maladies vasculaires"), ("SM26", "Pédiatrie")]
DOMAINS = ["medecin.mssante.fr", "ch-exemple.mssante.fr", "pharmacie.mssante.fr", "hopital-nord.mssante.fr"]
STRUCTURES = [
    ("CH EXEMPLE", "75", "75010", "PARIS"),
    ("CLINIQUE SAINT-ÉTIENNE", "42", "42000", "SAINT-ÉTIENNE"),
    ("CENTRE HOSPITALIER DE DUPONTVILLE", "69", "69003", "LYON"),
    ("PHARMACIE DU CENTRE", "13", "13001", "MARSEILLE"),
    ("MAISON DE SANTÉ DES ÉCRINS", "05", "05100", "BRIANÇON"),
]


@dataclass
class World:
    published: dict[str, dict] = field(default_factory=dict)  # address -> expected attributes
    hidden: set[str] = field(default_factory=set)  # liste rouge or deleted addresses
    next_person: int = 1
    next_mailbox: int = 1


def _record(**values):  # type: ignore[no-untyped-def]
    return {"active": True, "version": 1, "last_updated": NOW, "digest": 0, **values}


def populate(store: Store, *, seed: int = 42, people: int = 200) -> World:
    rng = random.Random(seed)
    world = World()
    persons, mailboxes, skills, structures = [], [], [], []
    for i, (name, dept, postcode, city) in enumerate(STRUCTURES, start=1):
        structures.append(_record(
            id=i, tech_id=f"F{i:08d}", idnat=f"1{i:08d}", finess=f"{i:09d}", name=name, street_number=str(i),
            street_type_label="Rue", street_name=f"de la Paix {i}", postcode=postcode, commune_label=city,
            phone=f"01 02 03 04 0{i}", dept_code=dept, name_key=search_key(name), city_key=search_key(city)))

    def add_person(first: str, last: str, prof: tuple[str, str], civ: str = "") -> tuple[int, str]:
        pid = world.next_person
        world.next_person += 1
        id_nat = f"8{10000000000 + pid}"
        persons.append(_record(
            id=pid, id_nat=id_nat, id_type="8", id_pp=id_nat[1:], civilite_exercice_code=civ or None,
            last_name=last, first_name=first, profession_code=prof[0], profession_label=prof[1],
            last_name_key=search_key(last), first_name_key=search_key(first)))
        return pid, id_nat

    def add_box(address: str, kind: str, *, holder: str | None = None, struct: int | None = None,
                service: str | None = None, description: str | None = None, liste_rouge: bool = False,
                active: bool = True, expect: dict | None = None) -> None:
        mid = world.next_mailbox
        world.next_mailbox += 1
        mailboxes.append(_record(
            id=mid, address=address, domain=address.split("@")[1], type=kind, holder=holder,
            structure_type="1" if struct else None, structure=f"{struct:08d}" if struct else None,
            structure_idnat=f"1{struct:08d}" if struct else None, service=service, description=description,
            responsible="secret.responsable@example.org", liste_rouge=liste_rouge, dematerialisation=True,
            source="operator", active=active))
        if liste_rouge or not active:
            world.hidden.add(address)
        else:
            world.published[address] = expect or {}

    def person_box(first: str, last: str, domain: str, prof=PROFESSIONS[0], civ="DR", skill_i: int | None = 0,
                   struct: int | None = None, **kw) -> str:  # type: ignore[no-untyped-def]
        pid, id_nat = add_person(first, last, prof, civ)
        if skill_i is not None and prof[0] == "10":
            code, label = SKILLS[skill_i]
            skills.append(_record(id=len(skills) + 1, key=f"{id_nat}|S|{code}", person_id=pid, type_code="S",
                                  code=code, label=label))
        local = f"{search_key(first).replace(' ', '-')}.{search_key(last).replace(' ', '-')}"
        address = kw.pop("address", None) or f"{local}@{domain}"
        add_box(address, kw.pop("kind", "PER"), holder=id_nat, struct=struct,
                expect={"cn": f"{first} {last.upper()}", "sn": last, "givenName": first, "idnat": id_nat}, **kw)
        return id_nat

    # Named people the tests use.
    person_box("Jean", "DUPONT", "medecin.mssante.fr", struct=1)
    person_box("Jeanne", "DUPOND", "medecin.mssante.fr", skill_i=2)
    person_box("Jean-Pierre", "DUPONTEL", "ch-exemple.mssante.fr", struct=1, skill_i=1)
    person_box("Hélène", "LEFÈVRE", "medecin.mssante.fr", struct=2)
    person_box("Camille", "MARTIN", "medecin.mssante.fr")
    person_box("Camille", "MARTIN", "ch-exemple.mssante.fr", address="camille.martin2@ch-exemple.mssante.fr",
               struct=1)
    person_box("Éric", "NOËL", "pharmacie.mssante.fr", prof=PROFESSIONS[1], civ="", struct=4)
    person_box("Zoé", "ÉTIENNE", "hopital-nord.mssante.fr", prof=PROFESSIONS[3], civ="")
    person_box("Philippe", "DUPUIS", "medecin.mssante.fr", kind="CAB")
    # Hidden boxes whose names match the same filters.
    person_box("Jean", "DUPONT", "hopital-nord.mssante.fr", address="jean.dupont.secret@hopital-nord.mssante.fr",
               liste_rouge=True)
    person_box("Marc", "DUPONTIER", "medecin.mssante.fr", liste_rouge=True)
    person_box("Hélène", "DUPRÉ", "medecin.mssante.fr", active=False)
    add_box("dup.confidentiel@ch-exemple.mssante.fr", "ORG", struct=1, service="Dupuytren confidentiel",
            liste_rouge=True)
    # Organisational and applicative boxes.
    add_box("cardiologie@ch-exemple.mssante.fr", "ORG", struct=1, service="Cardiologie",
            expect={"cn": "Cardiologie – CH EXEMPLE", "displayName": "Cardiologie – CH EXEMPLE"})
    add_box("secretariat.dupuytren@ch-exemple.mssante.fr", "ORG", struct=3, service="Chirurgie de la main",
            description="Secrétariat Dupuytren",
            expect={"cn": "Secrétariat Dupuytren – CENTRE HOSPITALIER DE DUPONTVILLE"})
    add_box("lab.resultats@hopital-nord.mssante.fr", "APP", struct=3, description="Résultats de laboratoire",
            expect={"cn": "Résultats de laboratoire – CENTRE HOSPITALIER DE DUPONTVILLE"})
    # Random people, some hidden.
    for i in range(people):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        prof = rng.choice(PROFESSIONS)
        hidden = rng.random() < 0.1
        address = f"{search_key(first).replace(' ', '-')}.{search_key(last).replace(' ', '-')}.{i}@" \
                  f"{rng.choice(DOMAINS)}"
        person_box(first, last, address.split("@")[1], prof=prof, civ=rng.choice(["DR", ""]),
                   skill_i=rng.randrange(3), struct=rng.choice([None, 1, 2, 3, 4, 5]), address=address,
                   liste_rouge=hidden)
    for i in range(40):
        s = rng.randrange(1, 6)
        service = rng.choice(["Urgences", "Radiologie", "Pédiatrie", "Accueil", "Bloc opératoire"])
        address = f"{search_key(service).replace(' ', '.')}.{i}@{rng.choice(DOMAINS)}"
        add_box(address, rng.choice(["ORG", "APP"]), struct=s, service=service,
                liste_rouge=rng.random() < 0.15, expect={"cn": f"{service} – {STRUCTURES[s - 1][0]}"})
    with store.write() as conn:
        conn.execute(insert(structure), structures)
        conn.execute(insert(person), persons)
        conn.execute(insert(skill), skills)
        conn.execute(insert(mailbox), mailboxes)
    return world


def journal_row(conn, entity: str, key: str, change: str = "updated") -> None:  # type: ignore[no-untyped-def]
    conn.execute(insert(journal).values(run_id=0, at=NOW, entity=entity, key=key, change=change))


# --- structures named the way mail-client users type them (issue 22: autocomplete reaches boxes) ------------

TOWNS = ["AUBRAC", "BRESSOLLES", "CORVIGNY", "DORMELLES", "ESTOUBLON", "FALICON", "GARDANNE"]
TOWN_BOXES = 30  # per "CENTRE DE SANTE MUNICIPAL DE <town>": 210 boxes, more than a selective word reaches


def add_named_structures(store: Store, world: World) -> dict[str, set[str]]:
    """Add CHU DE BEAUVAL, CENTRE HOSPITALIER DE JALMONT and seven municipal health centres with their
    boxes (and people attached to them, and hidden boxes); returns the published addresses by group."""
    groups: dict[str, set[str]] = {"beauval": set(), "jalmont": set(), "towns": set(), "people": set()}
    structures, persons, mailboxes = [], [], []
    sid = 100

    def add_structure(name: str, postcode: str, city: str) -> int:
        nonlocal sid
        sid += 1
        structures.append(_record(
            id=sid, tech_id=f"F{sid:08d}", idnat=f"1{sid:08d}", finess=f"{sid:09d}", name=name, street_number="1",
            street_type_label="Rue", street_name="de l'Hôpital", postcode=postcode, commune_label=city,
            dept_code=postcode[:2], name_key=search_key(name), city_key=search_key(city)))
        return sid

    def add_box(address: str, kind: str, struct: int, group: str, *, service: str | None = None,
                description: str | None = None, holder: str | None = None, liste_rouge: bool = False,
                cn: str = "") -> None:
        mailboxes.append(_record(
            id=world.next_mailbox, address=address, domain=address.split("@")[1], type=kind, holder=holder,
            structure_type="1", structure=f"{struct:08d}", structure_idnat=f"1{struct:08d}", service=service,
            description=description, responsible="secret.responsable@example.org", liste_rouge=liste_rouge,
            dematerialisation=True, source="operator", active=True))
        world.next_mailbox += 1
        if liste_rouge:
            world.hidden.add(address)
        else:
            world.published[address] = {"cn": cn}
            groups[group].add(address)

    def add_person(first: str, last: str, struct: int, address: str) -> None:
        pid = world.next_person
        world.next_person += 1
        id_nat = f"8{10000000000 + pid}"
        persons.append(_record(
            id=pid, id_nat=id_nat, id_type="8", id_pp=id_nat[1:], civilite_exercice_code="DR", last_name=last,
            first_name=first, profession_code="10", profession_label="Médecin", last_name_key=search_key(last),
            first_name_key=search_key(first)))
        add_box(address, "PER", struct, "people", holder=id_nat, cn="")
        world.published[address] = {"idnat": id_nat}

    beauval = add_structure("CHU DE BEAUVAL", "80000", "BEAUVAL")
    add_box("secretariat.cardio@chu-beauval.mssante.fr", "ORG", beauval, "beauval", service="Cardiologie",
            description="Secrétariat de cardiologie", cn="Secrétariat de cardiologie – CHU DE BEAUVAL")
    add_box("urgences@chu-beauval.mssante.fr", "ORG", beauval, "beauval", service="Urgences",
            cn="Urgences – CHU DE BEAUVAL")
    add_box("resultats@chu-beauval.mssante.fr", "APP", beauval, "beauval", description="Résultats de laboratoire",
            cn="Résultats de laboratoire – CHU DE BEAUVAL")
    add_box("direction@chu-beauval.mssante.fr", "ORG", beauval, "beauval", service="Direction", liste_rouge=True)
    # A doctor of the CHU: found by her name, never by her structure's.
    add_person("BÉNÉDICTE", "MARCHAND", beauval, "benedicte.marchand@chu-beauval.mssante.fr")
    jalmont = add_structure("CENTRE HOSPITALIER DE JALMONT", "51100", "JALMONT")
    add_box("accueil@ch-jalmont.mssante.fr", "ORG", jalmont, "jalmont", service="Accueil",
            cn="Accueil – CENTRE HOSPITALIER DE JALMONT")
    add_box("pediatrie@ch-jalmont.mssante.fr", "ORG", jalmont, "jalmont", service="Pédiatrie",
            cn="Pédiatrie – CENTRE HOSPITALIER DE JALMONT")
    # A doctor whose family name is the town's: people whose names match come first.
    add_person("JEAN-PIERRE", "JALMONT", 1, "jean-pierre.jalmont@medecin.mssante.fr")
    for town in TOWNS:
        name = f"CENTRE DE SANTE MUNICIPAL DE {town}"
        struct = add_structure(name, "30000", town)
        for i in range(TOWN_BOXES):
            service = f"Consultation {i + 1}"
            add_box(f"consultation{i + 1}@cds-{town.lower()}.mssante.fr", "ORG", struct, "towns", service=service,
                    cn=f"{service} – {name}")
    with store.write() as conn:
        conn.execute(insert(structure), structures)
        conn.execute(insert(person), persons)
        conn.execute(insert(mailbox), mailboxes)
    return groups
