"""Small fictitious directory content written the way the writers do it:
rows in the store tables plus one journal row per change.

(Every name and number here is invented.)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from annuaire.mailboxes.publication import lock_domain
from annuaire.store import Store
from annuaire.store.clock import utc_now
from annuaire.store.keys import search_key
from annuaire.store.schema import (
    activity,
    diploma,
    journal,
    mailbox,
    person,
    run,
    skill,
    structure,
)


class World:
    """Writes records and their journal rows; returns store ids."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.write() as conn:
            self.run_id = conn.execute(
                insert(run).values(kind="referential", started_at=utc_now(), status="ok")
            ).inserted_primary_key[0]
        self._next = {"person": 1, "structure": 1, "activity": 1, "skill": 1, "diploma": 1}

    def _journal(self, conn: Any, entity: str, key: str, change: str) -> None:
        conn.execute(
            insert(journal).values(run_id=self.run_id, at=utc_now(), entity=entity, key=key, change=change)
        )

    def _id(self, name: str) -> int:
        value = self._next[name]
        self._next[name] += 1
        return value

    def person(self, rpps: str, last: str, first: str, **extra: Any) -> int:
        pid = self._id("person")
        values = {
            "id": pid, "id_nat": "8" + rpps, "id_type": "8", "id_pp": rpps, "civilite_code": "MME", "civilite_exercice_code": "DR",
            "last_name": last, "first_name": first, "profession_code": "10", "profession_label": "Médecin",
            "category_code": "C", "category_label": "Civil", "last_name_key": search_key(last),
            "first_name_key": search_key(first), "active": True, "version": 1, "last_updated": utc_now(), "digest": 0,
        }
        values.update(extra)
        with self.store.write() as conn:
            conn.execute(insert(person).values(**values))
            self._journal(conn, "person", values["id_nat"], "created")
        return pid

    def structure(self, tech_id: str, name: str, **extra: Any) -> int:
        sid = self._id("structure")
        finess = tech_id[1:] if tech_id.startswith("F") else None
        values = {
            "id": sid, "tech_id": tech_id, "idnat": ("1" + finess) if finess else "4" + tech_id[1:], "finess": finess,
            "name": name, "street_number": "12", "street_type_code": "R", "street_type_label": "Rue",
            "street_name": "DE LA PAIX", "postcode": "99002", "commune_code": "99002", "commune_label": "EXEMPLEVILLE",
            "phone": "0100000000", "dept_code": "99", "name_key": search_key(name), "city_key": "exempleville",
            "active": True, "version": 1, "last_updated": utc_now(), "digest": 0,
        }
        values.update(extra)
        with self.store.write() as conn:
            conn.execute(insert(structure).values(**values))
            self._journal(conn, "structure", tech_id, "created")
        return sid

    def activity(self, person_id: int, structure_id: int | None, **extra: Any) -> int:
        aid = self._id("activity")
        values = {
            "id": aid, "key": f"{person_id}|{structure_id}|{aid}", "person_id": person_id, "structure_id": structure_id,
            "profession_code": "10", "category_code": "C", "mode_code": "S", "sector_code": "SA01", "role_code": "FON-05",
            "genre_code": "GENR01", "registration_authority": "CNOM/CNOM/ARS",
            "active": True, "version": 1, "last_updated": utc_now(), "digest": 0,
        }
        values.update(extra)
        with self.store.write() as conn:
            conn.execute(insert(activity).values(**values))
            self._journal(conn, "activity", values["key"], "created")
        return aid

    def skill(self, person_id: int, type_code: str, code: str) -> int:
        kid = self._id("skill")
        with self.store.write() as conn:
            id_nat = conn.execute(select(person.c.id_nat).where(person.c.id == person_id)).scalar()
            key = f"{id_nat}|{type_code}|{code}"
            conn.execute(insert(skill).values(
                id=kid, key=key, person_id=person_id, type_code=type_code, code=code, label=code,
                active=True, version=1, last_updated=utc_now(), digest=0,
            ))
            self._journal(conn, "skill", key, "created")
        return kid

    def diploma(self, person_id: int, type_code: str, code: str) -> int:
        did = self._id("diploma")
        with self.store.write() as conn:
            id_nat = conn.execute(select(person.c.id_nat).where(person.c.id == person_id)).scalar()
            key = f"{id_nat}|{code}||{did}"
            conn.execute(insert(diploma).values(
                id=did, key=key, person_id=person_id, type_code=type_code, code=code, label=code,
                active=True, version=1, last_updated=utc_now(), digest=0,
            ))
            self._journal(conn, "diploma", key, "created")
        return did

    def mailbox(self, address: str, type_: str, *, holder: str | None = None, structure_idnat: str | None = None,
                **extra: Any) -> int:
        values = {
            "address": address, "domain": address.rpartition("@")[2], "type": type_, "holder": holder,
            "structure_idnat": structure_idnat,
            "structure_type": structure_idnat[0] if structure_idnat else None,
            "structure": structure_idnat[1:] if structure_idnat else None,
            "liste_rouge": False, "source": "operator", "active": True, "version": 1, "last_updated": utc_now(), "digest": 0,
        }
        values.update(extra)
        with self.store.write() as conn:
            lock_domain(conn, values["domain"], utc_now())  # registered, as every writer of mailboxes does
            mid = conn.execute(insert(mailbox).values(**values)).inserted_primary_key[0]
            self._journal(conn, "mailbox", address, "created")
        return mid

    def change(self, table: Any, entity: str, key_column: str, key: str, **values: Any) -> None:
        """Update a record the way the diff engine does (version+1, journal)."""
        with self.store.write() as conn:
            conn.execute(
                update(table).where(table.c[key_column] == key)
                .values(version=table.c.version + 1, last_updated=utc_now(), **values)
            )
            change = "deleted" if values.get("active") is False else "updated"
            self._journal(conn, entity, key, change)


RPPS_BENE = "10000000017"


def populate(store: Store) -> dict[str, Any]:
    """The shared fictitious directory of the FHIR tests; returns names -> ids."""
    w = World(store)
    ids: dict[str, Any] = {"world": w}
    ids["s1"] = w.structure("F990000019", "CH EXEMPLE", finess_ej="990000027", siret="99000001900011",
                            sign="CHE", geo_complement="BATIMENT B", street_repetition="B")
    ids["s2"] = w.structure("R10000000001", "CABINET FICTIF", city_key="autreville", commune_label="AUTREVILLE",
                            postcode="99100", street_name="DES LILAS", street_type_code="AV")
    ids["s3"] = w.structure("F990000035", "CLINIQUE FERMEE", finess_ej="990000027", active=False)
    ids["bene"] = p = w.person(RPPS_BENE, "TESTDUPONT", "Bénédicte")
    w.skill(p, "S", "SM41")
    w.diploma(p, "DE", "DE11")
    ids["bene_role"] = w.activity(p, ids["s1"], mode_code="L", pharma_section_code=None)
    w.mailbox("benedicte.testdupont@ch-exemple.mssante.fr", "PER", holder="8" + RPPS_BENE, dematerialisation=False)
    w.mailbox("b.testdupont@ch-exemple.mssante.fr", "PER", holder="8" + RPPS_BENE, structure_idnat="1990000019",
              dematerialisation=True)
    w.mailbox("cachee.testdupont@ch-exemple.mssante.fr", "PER", holder="8" + RPPS_BENE, liste_rouge=True)
    ids["martin"] = w.person("10000000025", "MARTIN", "Benedicte", civilite_code="M", civilite_exercice_code=None,
                             profession_code="21", profession_label="Pharmacien")
    ids["martin_role"] = w.activity(ids["martin"], ids["s2"], role_code="FON-03", sector_code="SA07",
                                    pharma_section_code="A", registration_authority="CNOP/CNOP/ARS")
    w.mailbox("cabinet.martin@autre.mssante.fr", "CAB", holder="810000000025", rank=1)
    ids["dupontel"] = w.person("10000000033", "DUPONTEL", "Camille")
    ids["legall"] = w.person("10000000041", "LE GALL", "Anne-Marie")
    ids["ancien"] = w.person("10000000058", "ANCIEN", "Paul", active=False)
    w.mailbox("secretariat.cardio@ch-exemple.mssante.fr", "ORG", structure_idnat="1990000019",
              service="Cardiologie", description="Secrétariat de cardiologie", responsible="Mme Responsable",
              dematerialisation=True)
    w.mailbox("robot@ch-exemple.mssante.fr", "APP", structure_idnat="1990000019")
    w.mailbox("confidentiel@ch-exemple.mssante.fr", "ORG", structure_idnat="1990000019", liste_rouge=True)
    w.mailbox("direction@ch-exemple.mssante.fr", "ORG", structure_idnat="1990000027")
    ids["pageurs"] = []
    for n in range(120):
        pid = w.person(f"2{n:010d}", f"PAGEUR{chr(65 + n % 26)}", f"Prenom{n}")
        ids["pageurs"].append(pid)
        w.activity(pid, ids["s2"])
    return ids
