"""The detail pages' data: one professional, one structure (public data only).

A professional: identity, profession and savoir-faire, diplomas, each current
activity with its structure's address, and the published PER/CAB mailboxes.
A structure: identity, address, its published ORG/APP mailboxes and, a page
at a time, the professionals attached to it through their activities.
Inactive records answer NotFound: the public never sees tombstones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, true

from annuaire.errors import NotFound
from annuaire.store.schema import activity, diploma, person, skill, structure
from annuaire.web.search import (
    PAGE_SIZE,
    STRUCTURE_BOX_TYPES,
    Box,
    Page,
    PersonHit,
    _page_ids,
    load_people,
    owner_idnats,
    person_boxes,
    structure_boxes,
)

STRUCTURE_COLUMNS = (
    structure.c.id, structure.c.tech_id, structure.c.idnat, structure.c.siret, structure.c.siren,
    structure.c.finess, structure.c.finess_ej, structure.c.name, structure.c.sign, structure.c.addressee,
    structure.c.geo_complement, structure.c.street_number, structure.c.street_repetition,
    structure.c.street_type_label, structure.c.street_name, structure.c.distribution_mention,
    structure.c.cedex_office, structure.c.postcode, structure.c.commune_label, structure.c.country_label,
    structure.c.phone, structure.c.phone2, structure.c.fax, structure.c.email, structure.c.dept_code,
    structure.c.dept_label,
)


@dataclass
class StructureInfo:
    tech_id: str
    idnat: str
    name: str
    sign: str
    address: list[str]
    phones: list[str]
    fax: str
    email: str
    identifiers: list[tuple[str, str]]
    departement: str


@dataclass
class ActivityInfo:
    structure: StructureInfo | None
    profession: str
    skill: str
    mode: str
    role: str
    sector: str
    genre: str
    boxes: list[Box] = field(default_factory=list)  # PER boxes attached to this structure


@dataclass
class PersonDetail:
    card: PersonHit
    category: str
    skills: list[tuple[str, str]]  # (type label, label)
    diplomas: list[str]
    activities: list[ActivityInfo]
    boxes: list[tuple[Box, str]]  # (box, name of its structure or '')


@dataclass
class StructureDetail:
    info: StructureInfo
    boxes: list[Box]
    people: Page


def address_lines(r: Any) -> list[str]:
    """The postal address in AFNOR lines (L2 to L6), empty lines left out."""
    street = " ".join(
        p for p in (r.street_number, r.street_repetition, r.street_type_label, r.street_name) if p
    )
    town = " ".join(p for p in (r.postcode, r.cedex_office or r.commune_label) if p)
    country = r.country_label if r.country_label and r.country_label.upper() != "FRANCE" else ""
    lines = (r.addressee, r.geo_complement, street, r.distribution_mention, town, country)
    return [line for line in lines if line]


def structure_info(r: Any) -> StructureInfo:
    ids = [
        ("FINESS établissement", r.finess),
        ("FINESS entité juridique", r.finess_ej),
        ("SIRET", r.siret),
        ("Identifiant national", r.idnat),
    ]
    return StructureInfo(
        tech_id=r.tech_id,
        idnat=r.idnat or "",
        name=r.name or r.sign or r.tech_id,
        sign=r.sign if r.sign and r.sign != r.name else "",
        address=address_lines(r),
        phones=[p for p in (r.phone, r.phone2) if p],
        fax=r.fax or "",
        email=r.email or "",
        identifiers=[(k, v) for k, v in ids if v],
        departement=" – ".join(p for p in (r.dept_code, r.dept_label) if p),
    )


def person_detail(conn: Connection, id_nat: str) -> PersonDetail:
    row = conn.execute(
        select(person.c.id, person.c.category_label).where(
            person.c.id_nat == id_nat, person.c.active == true()
        )
    ).first()
    if row is None:
        raise NotFound(f"aucun professionnel actif n'a l'identifiant {id_nat}")
    card = load_people(conn, [row.id])[0]
    skills = [
        (r.type_label or "", r.label or r.code or "")
        for r in conn.execute(
            select(skill.c.type_label, skill.c.label, skill.c.code)
            .where(skill.c.person_id == row.id, skill.c.active == true())
            .order_by(skill.c.id)
        )
    ]
    diplomas = [
        r.label
        for r in conn.execute(
            select(diploma.c.label)
            .where(diploma.c.person_id == row.id, diploma.c.active == true())
            .order_by(diploma.c.id)
        )
        if r.label
    ]
    activities = _activities(conn, row.id)
    boxes = [box for _, box in person_boxes(conn, [id_nat])]
    names = {a.structure.idnat: a.structure.name for a in activities if a.structure and a.structure.idnat}
    missing = {b.structure_idnat for b in boxes if b.structure_idnat and b.structure_idnat not in names}
    if missing:
        for r in conn.execute(
            select(structure.c.idnat, structure.c.name).where(structure.c.idnat.in_(missing))
        ):
            names[r.idnat] = r.name or ""
    for a in activities:
        if a.structure and a.structure.idnat:
            a.boxes = [b for b in boxes if b.structure_idnat == a.structure.idnat]
    return PersonDetail(
        card=card,
        category=row.category_label or "",
        skills=skills,
        diplomas=diplomas,
        activities=activities,
        boxes=[(b, names.get(b.structure_idnat, "")) for b in boxes],
    )


def _activities(conn: Connection, person_id: int) -> list[ActivityInfo]:
    rows = conn.execute(
        select(
            activity.c.profession_label, activity.c.skill_label, activity.c.mode_label,
            activity.c.role_label, activity.c.sector_label, activity.c.genre_label,
            activity.c.structure_id, *[c.label(f"s_{c.name}") for c in STRUCTURE_COLUMNS],
        )
        .select_from(
            activity.outerjoin(
                structure, (structure.c.id == activity.c.structure_id) & (structure.c.active == true())
            )
        )
        .where(activity.c.person_id == person_id, activity.c.active == true())
        .order_by(activity.c.id)
    ).all()
    out = []
    for r in rows:
        info = None
        if r.s_id is not None:
            info = structure_info(_Prefixed(r, "s_"))
        out.append(
            ActivityInfo(
                structure=info,
                profession=r.profession_label or "",
                skill=r.skill_label or "",
                mode=r.mode_label or "",
                role=r.role_label or "",
                sector=r.sector_label or "",
                genre=r.genre_label or "",
            )
        )
    return out


class _Prefixed:
    """Attribute access to the `prefix`-labelled columns of a row."""

    def __init__(self, row: Any, prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def structure_detail(conn: Connection, tech_id: str, page: int) -> StructureDetail:
    row = conn.execute(
        select(*STRUCTURE_COLUMNS).where(structure.c.tech_id == tech_id, structure.c.active == true())
    ).first()
    if row is None:
        raise NotFound(f"aucune structure active n'a l'identifiant {tech_id}")
    info = structure_info(row)
    boxes = [box for _, box in structure_boxes(conn, owner_idnats(row.idnat, row.finess_ej), STRUCTURE_BOX_TYPES)]
    query = (
        select(person.c.id, person.c.last_name_key, person.c.first_name_key)
        .select_from(activity.join(person, person.c.id == activity.c.person_id))
        .where(activity.c.structure_id == row.id, activity.c.active == true(), person.c.active == true())
        .distinct()
        .order_by(person.c.last_name_key, person.c.first_name_key, person.c.id)
    )
    ids, has_next = _page_ids(conn, query, page)
    return StructureDetail(info=info, boxes=boxes, people=Page(page, load_people(conn, ids), has_next))


__all__ = ["PAGE_SIZE", "PersonDetail", "StructureDetail", "person_detail", "structure_detail"]
