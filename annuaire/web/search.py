"""The queries of the search page: criteria -> one page of people or structures.

Every condition goes through an indexed column: name prefixes on the
`*_key` columns (b-tree ranges), codes on their indexes, places through
structure.city_key / dept_code / postcode, addresses through the mailbox
address (prefix range, or the trigram index of `annuaire.store.contains`).
Only public data leaves this module: active people and structures, published
mailboxes (never liste rouge, never the `responsible` column).

Pages are read with LIMIT size+1 (the extra row tells whether a next page
exists) so that no search ever counts millions of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    and_,
    distinct,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union,
    union_all,
)

from annuaire.errors import InvalidInput
from annuaire.store import contains
from annuaire.store.prefix import starts_with
from annuaire.store.schema import activity, mailbox, person, skill, structure
from annuaire.store.select import prepared
from annuaire.store.visibility import visible
from annuaire.web import display, memo, names, plan
from annuaire.web.interpret import Criteria
from annuaire.web.memo import per_answer
from annuaire.web.sql import Columns, bare, placeholder

PAGE_SIZE = 20
MAX_PAGE = 50  # deeper than 1,000 results: refine the search instead
PERSON_BOX_TYPES = ("PER", "CAB")
STRUCTURE_BOX_TYPES = ("ORG", "APP")


# --- what a page shows --------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A published mailbox, as the public may see it."""

    address: str
    type: str
    service: str = ""
    description: str = ""
    structure_idnat: str = ""


@dataclass
class Place:
    """A structure where somebody works (or the structure of a result)."""

    tech_id: str
    name: str
    city: str
    postcode: str
    role: str = ""


@dataclass
class PersonHit:
    id_nat: str
    civility: str
    first_name: str
    last_name: str
    profession: str
    skills: list[str] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.civility, self.first_name, self.last_name) if p)


@dataclass
class StructureHit:
    place: Place
    boxes: list[Box] = field(default_factory=list)
    id: int = 0
    more_boxes: int = 0  # published boxes not listed on a results page (see the structure's page)
    named_boxes: int = 0  # of the boxes listed, how many the query named (listed first)


@dataclass
class Page:
    number: int
    items: list[Any]
    has_next: bool
    note: str = ""  # e.g. "no family name starts so: first names shown"

    @property
    def first_rank(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1


# --- building blocks ------------------------------------------------------------


def published(types: Sequence[str]) -> ColumnElement[bool]:
    """Publicly visible boxes of these types (the directory's one rule, `store.visibility`)."""
    return _published(tuple(types))


@lru_cache(maxsize=16)
def _published(types: tuple[str, ...]) -> ColumnElement[bool]:
    """(Built once per types: an expression is immutable, and building this one costs more
    than running the small queries it is part of.)"""
    return and_(visible(), mailbox.c.type.in_(types))


def legal_idnat(table: Any = structure) -> ColumnElement[str]:
    """`1` + the FINESS of the structure's legal entity: boxes attached to its EJ show on each site."""
    return literal("1") + table.c.finess_ej


def address_condition(conn: Connection, address: str, ix: Any = bare) -> ColumnElement[bool]:
    """Mailboxes whose address matches what was typed.

    '@domain' (or '@dom' prefix) goes through the domain index; the beginning
    of an address through the address index; any other part of one through
    the trigram index (contains). Never an OR of two indexed conditions: it
    would defeat both indexes.
    """
    if address.startswith("@"):
        return starts_with(ix(mailbox.c.domain), address[1:]) if len(address) > 1 else false()
    starts = select(mailbox.c.id).where(starts_with(mailbox.c.address, address))
    if conn.execute(starts.limit(1)).first() is not None:
        return mailbox.c.id.in_(starts)  # the beginning of an address, as typed most often
    try:
        inside = contains.contains_ids(conn, "mailbox.address", address)
    except InvalidInput:
        return mailbox.c.id.in_(starts)
    return mailbox.c.id.in_(union(starts, inside))


def place_condition(c: Criteria, ix: Any = bare) -> ColumnElement[bool] | None:
    """Conditions on structure columns for the place criteria, or None."""
    conds: list[ColumnElement[bool]] = []
    if c.departement:
        conds.append(ix(structure.c.dept_code) == c.departement)
    if c.postcode:
        conds.append(ix(structure.c.postcode) == c.postcode)
    if c.city_key:
        conds.append(city_condition(c.city_key, ix))
    return and_(*conds) if conds else None


def city_condition(key: str, ix: Any = bare) -> ColumnElement[bool]:
    """The city itself, or its numbered districts ('lyon' -> 'lyon 3e arrondissement')."""
    col = ix(structure.c.city_key)
    return or_(col == key, and_(col >= key + " 0", col < key + " :"))


def place_key(c: Criteria) -> tuple:
    return (c.departement, c.postcode, c.city_key)


# --- people -----------------------------------------------------------------


def people_query(conn: Connection, c: Criteria, page: int, first_name: str | None = None) -> Select | None:
    """Ids of the active people matching the criteria, in name order; None when surely empty.

    The path (walk the name index, or drive from the smallest candidate set)
    is chosen by annuaire.web.plan from counts.
    """
    found = names.readings(conn, c.name) if c.name else []
    candidates = person_candidates(conn, c, first_name, found)
    if not candidates:
        return None  # nothing asked
    walk = not found or names.walkable(found)
    chosen = plan.choose(conn, candidates, total_people(conn), page, PAGE_SIZE, walk=walk)
    if chosen.path == "empty":
        return None
    ix = Columns(conn)
    skip = chosen.implied
    conds: list[ColumnElement[bool]] = [person.c.active == true()]
    walking = chosen.driver is None
    walked_name = walking and names.walkable(found)
    if chosen.ids is not None:
        conds.append(person.c.id.in_(chosen.ids))
    elif ix.steer and not walked_name and not c.profession:
        conds.append(person.c.last_name_key >= "")  # walk the family-name index in order
    if c.name and "name" not in skip:
        conds.append(names.condition(found, ix, walked_name))
    if first_name and "first_name" not in skip:
        conds.append(starts_with(ix(person.c.first_name_key), first_name))
    if c.profession and "profession" not in skip:
        # walking: the (profession, name) index gives the profession's people in name order
        profession_col = person.c.profession_code if walking else ix(person.c.profession_code)
        conds.append(profession_col == c.profession)
    if c.savoir_faire and "savoir_faire" not in skip:
        conds.append(exists().where(skill.c.person_id == person.c.id, *skill_conditions(c, ix)))
    if place_key(c) != (None, None, None) and "place" not in skip:
        conds.append(exists().where(activity.c.person_id == person.c.id, *place_conditions(c, ix)))
    if (c.address or c.mailbox_type in PERSON_BOX_TYPES) and "box" not in skip:
        conds.append(exists().where(mailbox.c.holder == person.c.id_nat, *box_conditions(conn, c, ix)))
    return select(person.c.id).where(*conds).order_by(*name_order(person, walking))


def name_order(table: Any, walking: bool) -> list[Any]:
    """ORDER BY of a page; when driving, an expression, so that no engine walks an index instead.

    (Given `id IN (10,000 dermatologists)` and a LIMIT, PostgreSQL prefers to
    read the name index until it meets 20 of them: a quarter of the country.)
    """
    key = table.c.last_name_key if table is person else table.c.name_key
    first = [key if walking else key.concat("")]
    if table is person:
        first.append(person.c.first_name_key)
    return [*first, table.c.id]


def skill_conditions(c: Criteria, ix: Any = bare) -> list[ColumnElement[bool]]:
    return [ix(skill.c.code) == c.savoir_faire, skill.c.active == true()]


def place_conditions(c: Criteria, ix: Any = bare) -> list[ColumnElement[bool]]:
    """On activity: a current activity in one of the active structures of the place.

    The structures form a set computed once per query (through their own
    index). Enumerating the place's people reads the (structure, person)
    index for each structure; checking one person (`ix` steering SQLite off
    that index) reads that person's activities and looks them up in the set.
    """
    place = place_condition(c)
    assert place is not None
    there = select(structure.c.id).where(structure.c.active == true(), place)
    return [activity.c.active == true(), ix(activity.c.structure_id).in_(there)]


def box_conditions(conn: Connection, c: Criteria, ix: Any = bare) -> list[ColumnElement[bool]]:
    """On mailbox: a published PER/CAB box matching the typed address and the asked type."""
    conds = [published(PERSON_BOX_TYPES)]
    if c.address:
        conds.append(address_condition(conn, c.address, ix))
    if c.mailbox_type in PERSON_BOX_TYPES:
        conds.append(mailbox.c.type == c.mailbox_type)
    return conds


def person_candidates(
    conn: Connection, c: Criteria, first_name: str | None, found: list[names.Reading]
) -> list[plan.Candidate]:
    """One set of person ids per criterion an index can enumerate (each with all its conditions)."""
    out: list[plan.Candidate] = []
    if c.name:
        ids = names.ids(found, Columns(conn))
        walkable = names.walkable(found)
        out.append(plan.Candidate("name", ids, walkable=walkable, known=names.estimate(found), index_only=walkable))
    if first_name:
        ids = select(person.c.id).where(starts_with(person.c.first_name_key, first_name))
        out.append(plan.Candidate("first_name", ids, index_only=True))
    if c.profession:
        ids = select(person.c.id).where(person.c.profession_code == c.profession)
        key: tuple | None = ("profession", c.profession)
        out.append(plan.Candidate("profession", ids, key, walkable=True, index_only=True))
    if c.savoir_faire:
        ids = select(skill.c.person_id).where(*skill_conditions(c))
        out.append(plan.Candidate("savoir_faire", ids, ("skill", c.savoir_faire), index_only=True))
    if place_key(c) != (None, None, None):
        ids = select(activity.c.person_id).where(*place_conditions(c))
        key = ("place-people", *place_key(c))
        out.append(plan.Candidate("place", ids, key, index_only=True))
    if c.address or c.mailbox_type in PERSON_BOX_TYPES:
        ids = (
            select(person.c.id)
            .select_from(mailbox.join(person, person.c.id_nat == mailbox.c.holder))
            .where(*box_conditions(conn, c))
        )
        free_text = c.address and not c.address.startswith("@")
        key = None if free_text else ("box-people", c.address, c.mailbox_type)
        boxes = select(func.count()).select_from(mailbox).where(*box_conditions(conn, c))
        out.append(plan.Candidate("box", ids, key, estimate=None if free_text else boxes))
    return out


def total_people(conn: Connection) -> int:
    return plan.COUNTS.get(conn, ("people",), select(person.c.id))


def search_people(conn: Connection, c: Criteria, page: int) -> Page:
    """One page of people; a lone word with no family-name match tries first names."""
    ids, has_next = _page_ids(conn, people_query(conn, c, page), page)
    note = ""
    if not ids and page == 1 and len(c.name) == 1 and not c.address:
        query = people_query(conn, replace(c, name=()), page, first_name=c.name[0])
        ids, has_next = _page_ids(conn, query, page)
        if ids:
            note = "Aucun nom de famille ne commence ainsi : résultats par prénom."
    return Page(page, load_people(conn, ids), has_next, note)


def _page_ids(conn: Connection, query: Select | None, page: int) -> tuple[list[int], bool]:
    if query is None:
        return [], False
    rows = conn.execute(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)).scalars().all()
    return list(rows[:PAGE_SIZE]), len(rows) > PAGE_SIZE


def load_people(conn: Connection, ids: list[int]) -> list[PersonHit]:
    """The public card of each person, in the order of `ids` (4 queries per page)."""
    if not ids:
        return []
    rows = conn.execute(
        select(
            person.c.id, person.c.id_nat, person.c.civilite_exercice_label, person.c.first_name,
            person.c.last_name, person.c.profession_label,
        ).where(person.c.id.in_(ids))
    ).all()
    hits = {
        r.id: PersonHit(
            id_nat=r.id_nat,
            civility=_short_civility(r.civilite_exercice_label),
            first_name=display.first_name(r.first_name),
            last_name=r.last_name or "",
            profession=r.profession_label or "",
        )
        for r in rows
    }
    for r in conn.execute(
        select(skill.c.person_id, skill.c.label)
        .where(skill.c.person_id.in_(ids), skill.c.active == true())
        .order_by(skill.c.person_id, skill.c.id)
    ):
        if r.label and r.label not in hits[r.person_id].skills:
            hits[r.person_id].skills.append(r.label)
    for a in conn.execute(
        select(
            activity.c.person_id, activity.c.role_label, structure.c.tech_id, structure.c.name,
            structure.c.sign, structure.c.commune_label, structure.c.postcode,
        )
        .select_from(activity.join(structure, structure.c.id == activity.c.structure_id))
        .where(activity.c.person_id.in_(ids), activity.c.active == true(), structure.c.active == true())
        .order_by(activity.c.person_id, activity.c.id)
    ):
        place = Place(a.tech_id, a.name or a.sign or "", a.commune_label or "", a.postcode or "", a.role_label or "")
        if all(p.tech_id != place.tech_id for p in hits[a.person_id].places):
            hits[a.person_id].places.append(place)
    by_nat = {h.id_nat: h for h in hits.values()}
    for box in person_boxes(conn, list(by_nat)):
        by_nat[box[0]].boxes.append(box[1])
    return [hits[i] for i in ids if i in hits]


def person_boxes(conn: Connection, id_nats: list[str]) -> list[tuple[str, Box]]:
    """(holder, box) of the published PER/CAB boxes of these people, best rank first."""
    if not id_nats:
        return []
    rows = conn.execute(
        select(
            mailbox.c.holder, mailbox.c.address, mailbox.c.type, mailbox.c.service,
            mailbox.c.description, mailbox.c.structure_idnat, mailbox.c.rank,
        ).where(mailbox.c.holder.in_(id_nats), published(PERSON_BOX_TYPES))
    ).all()
    rows = sorted(rows, key=lambda r: (r.holder, r.rank is None, r.rank or 0, r.type != "PER", r.address))
    return [
        (r.holder, Box(r.address, r.type, r.service or "", r.description or "", r.structure_idnat or ""))
        for r in rows
    ]


def _short_civility(label: str | None) -> str:
    return {"Docteur": "Dr", "Professeur": "Pr"}.get(label or "", label or "")


# --- structures ---------------------------------------------------------------


def structures_query(
    conn: Connection, c: Criteria, types: Sequence[str], page: int, require_boxes: bool = True
) -> Select | None:
    """Ids of the active structures matching the criteria (publishing boxes of `types`), in name order.

    The path is chosen as for people (see `people_query`); None when surely empty.
    """
    if c.profession or c.savoir_faire:
        return None  # professions belong to people, not to structures
    needs_box = require_boxes or bool(c.address)
    candidates: list[plan.Candidate] = []
    if c.name:
        ids = select(structure.c.id).where(starts_with(structure.c.name_key, " ".join(c.name)))
        candidates.append(plan.Candidate("name", ids, walkable=True, index_only=True))
    if place_key(c) != (None, None, None):
        # not None: place_key(c) names at least one place criterion
        ids = select(structure.c.id).where(cast(ColumnElement[bool], place_condition(c)))
        key: tuple | None = ("place-structures", *place_key(c))
        candidates.append(plan.Candidate("place", ids, key, index_only=True))
    if needs_box:
        by_site = (
            select(structure.c.id)
            .select_from(mailbox.join(structure, structure.c.idnat == mailbox.c.structure_idnat))
            .where(*structure_box_conditions(conn, c, types))
        )
        by_legal = (
            select(structure.c.id)
            .select_from(mailbox.join(structure, structure.c.finess_ej == func.substr(mailbox.c.structure_idnat, 2)))
            .where(func.substr(mailbox.c.structure_idnat, 1, 1) == "1", *structure_box_conditions(conn, c, types))
        )
        ids = select(structure.c.id).where(structure.c.id.in_(union(by_site, by_legal)))
        free_text = c.address and not c.address.startswith("@")
        key = None if free_text else ("box-structures", c.address, *types)
        # structures publishing such boxes (a hospital has hundreds of boxes: count it once)
        owners = func.count(distinct(mailbox.c.structure_idnat))
        boxes = select(owners).select_from(mailbox).where(*structure_box_conditions(conn, c, types))
        candidates.append(
            plan.Candidate("box", ids, key, estimate=None if free_text else boxes, drives=bool(c.address))
        )
    if not candidates:
        return None
    total = plan.COUNTS.get(conn, ("structures",), select(structure.c.id))
    chosen = plan.choose(conn, candidates, total, page, PAGE_SIZE)
    if chosen.path == "empty":
        return None
    ix = Columns(conn)
    skip = chosen.implied
    conds: list[ColumnElement[bool]] = [structure.c.active == true()]
    if chosen.ids is not None:
        conds.append(structure.c.id.in_(chosen.ids))
        name_ix: Callable[[Any], Any] = ix
    else:
        name_ix = bare  # the walked index stays usable
        if not c.name and ix.steer:
            conds.append(structure.c.name_key >= "")  # walk the name index in order
    if c.name and "name" not in skip:
        conds.append(starts_with(name_ix(structure.c.name_key), " ".join(c.name)))
    place = place_condition(c, ix)
    if place is not None and "place" not in skip:
        conds.append(place)
    if needs_box and "box" not in skip:
        box_conds = structure_box_conditions(conn, c, types, ix)
        conds.append(or_(exists().where(mailbox.c.structure_idnat == structure.c.idnat, *box_conds),
                         exists().where(mailbox.c.structure_idnat == legal_idnat(), *box_conds)))
    return select(structure.c.id).where(*conds).order_by(*name_order(structure, chosen.ids is None))


def structure_box_conditions(
    conn: Connection, c: Criteria, types: Sequence[str], ix: Any = bare
) -> list[ColumnElement[bool]]:
    conds = [published(types)]
    if c.address:
        conds.append(address_condition(conn, c.address, ix))
    return conds


def search_structures(
    conn: Connection, c: Criteria, page: int, types: Sequence[str], *, require_boxes: bool = True
) -> Page:
    ids, has_next = _page_ids(conn, structures_query(conn, c, types, page, require_boxes), page)
    return Page(page, load_structures(conn, ids, types), has_next)


def some_structures(conn: Connection, c: Criteria, limit: int = 5) -> list[StructureHit]:
    """A few structures named like the box, or publishing the typed address (beside people)."""
    if not (c.name or c.address) or c.profession or c.savoir_faire:
        return []
    if not c.address and place_key(c) == (None, None, None):
        # A name alone: the first structures of the name index range.
        named = starts_with(structure.c.name_key, " ".join(c.name))
        by_name = select(structure.c.id).where(named, structure.c.active == true()).order_by(
            structure.c.name_key, structure.c.id
        )
        return load_structures(conn, list(conn.execute(by_name.limit(limit)).scalars()), STRUCTURE_BOX_TYPES)
    query = structures_query(conn, c, STRUCTURE_BOX_TYPES, 1, require_boxes=False)
    if query is None:
        return []
    return load_structures(conn, list(conn.execute(query.limit(limit)).scalars()), STRUCTURE_BOX_TYPES)


def load_structures(conn: Connection, ids: list[int], types: Sequence[str]) -> list[StructureHit]:
    if not ids:
        return []
    rows = conn.execute(
        select(
            structure.c.id, structure.c.tech_id, structure.c.idnat, structure.c.finess_ej, structure.c.name,
            structure.c.sign, structure.c.commune_label, structure.c.postcode,
        ).where(structure.c.id.in_(ids))
    ).all()
    hits = {
        r.id: StructureHit(Place(r.tech_id, r.name or r.sign or "", r.commune_label or "", r.postcode or ""), id=r.id)
        for r in rows
    }
    owners: dict[str, list[StructureHit]] = {}
    for r in rows:
        for idnat in owner_idnats(r.idnat, r.finess_ej):
            owners.setdefault(idnat, []).append(hits[r.id])
    listed: dict[int, set[Box]] = {i: set() for i in hits}  # each hit's boxes once (a hospital has hundreds)
    for idnat, box in structure_boxes(conn, list(owners), types):
        for hit in owners[idnat]:
            if box not in listed[hit.id]:
                listed[hit.id].add(box)
                hit.boxes.append(box)
    return [hits[i] for i in ids if i in hits]


def owner_idnats(idnat: str | None, finess_ej: str | None) -> list[str]:
    """The national ids a site's boxes may be attached to: its own, and its legal entity's."""
    return [i for i in (idnat, "1" + finess_ej if finess_ej else None) if i]


def structure_boxes(conn: Connection, idnats: list[str], types: Sequence[str]) -> list[tuple[str, Box]]:
    """(structure idnat, box) of the published boxes of these structures."""
    if not idnats:
        return []
    rows = conn.execute(
        select(
            mailbox.c.structure_idnat, mailbox.c.address, mailbox.c.type, mailbox.c.service,
            mailbox.c.description,
        )
        .where(mailbox.c.structure_idnat.in_(idnats), published(types))
        .order_by(mailbox.c.structure_idnat, mailbox.c.address)
    ).all()
    return [(r.structure_idnat, Box(r.address, r.type, r.service or "", r.description or "")) for r in rows]


# --- lookups the interpretation of the box needs ----------------------------------


@per_answer
def city_label(conn: Connection, key: str) -> str | None:
    """The label of the city whose key is `key` (or of its districts), if any structure is there."""
    return _city_labels(conn, [key])[key]


def read_cities(conn: Connection, keys: Iterable[str]) -> None:
    """`city_label` of each key read at once (a statement per CITIES_AT_ONCE keys) for the lookups
    of this answer to find (`memo.prefetch`)."""
    memo.prefetch(city_label, keys, lambda missing: _city_labels(conn, missing))


CITIES_AT_ONCE = 16


def _city_labels(conn: Connection, keys: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(keys)
    for start in range(0, len(keys), CITIES_AT_ONCE):
        chunk = keys[start : start + CITIES_AT_ONCE]
        values = {f"k{i}": key for i, key in enumerate(chunk)}
        for i, label, city in prepared(conn, f"city labels {len(chunk)}", partial(_cities, len(chunk)), values):
            key = chunk[i]
            label = label or key
            out[key] = label if city == key else label.rsplit(" ", 2)[0]
    return out


def _cities(n: int) -> CompoundSelect:
    """A structure of each of n cities (or of their districts), if any: `k0`… given when it runs."""
    firsts = [
        select(literal_column(str(i)).label("i"), structure.c.commune_label, structure.c.city_key)
        .where(city_condition(placeholder(f"k{i}")), structure.c.active == true())
        .limit(1)
        .subquery()
        for i in range(n)
    ]
    return union_all(*(select(first) for first in firsts))


@per_answer
def is_family_name(conn: Connection, key: str) -> bool:
    return bool(prepared(conn, "family name", _family_name, {"key": key}))


def _family_name() -> Select:
    return select(person.c.id).where(person.c.last_name_key == placeholder("key"), person.c.active == true()).limit(1)
