"""What the results page shows for one search, in the order it is decided.

1. A number copied from another system (`identifiers`): one record found goes
   straight to its page, several are listed.
2. The box read into criteria (`interpret`): people (`search.search_people`)
   and, beside them, the structures its words name (`words.search`); with no
   people, those structures are the results (never "no result" above them);
   ORG/APP boxes asked (`type`) or "all structures" (`comme=structure`): the
   structures alone.
3. Nothing found although the box was read as a place or a trade: read again
   as a name. A city that is also a family name ("gaelle ponois"): the people
   so named first, then those of the city.
4. Nothing (or very little) found: the corrections of `suggest`; the first one
   that finds something is shown, said so, and the others that find something
   offered as links (never a correction known to find nothing; none tried after
   one that finds a whole page). A word held nowhere, not even inside a name
   (`suggest.absent`: "cabient"): the box would find nothing, its corrections
   are searched first, and the box itself only when none finds anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from sqlalchemy import Connection, select

from annuaire.store.keys import search_key
from annuaire.store.schema import person, structure
from annuaire.web import identifiers, memo, search, suggest, words
from annuaire.web.interpret import MAX_CITY_WORDS, Criteria, interpret, with_filters
from annuaire.web.params import SearchParams
from annuaire.web.vocab import departement_code, vocabulary

SIDE_SIZE = 5  # structures beside people
BOXES_LISTED = 5  # boxes of a structure listed on a results page
FEW = 2  # this many results or fewer: corrections are offered


@dataclass
class Answer:
    box: Criteria  # what the box alone says
    criteria: Criteria  # with the filters
    people: search.Page | None = None  # the main list, when it is people
    structures: search.Page | None = None  # the main list, when it is structures
    side: list[search.StructureHit] = field(default_factory=list)  # structures beside people
    side_more: bool = False
    structures_first: bool = False  # a structure is exactly what the box names: shown above the people
    identifier: str = ""  # the number typed, when the box was one
    identified: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, key, what the number is)
    redirect: str = ""
    note: str = ""
    typed: str = ""  # the box as typed, when the results are those of a correction…
    shown: str = ""  # …and that correction
    merged: list[str] = field(default_factory=list)  # the corrections whose results are shown together
    suggestions: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.people and self.people.items) and not (self.structures and self.structures.items) and not self.side

    @property
    def count(self) -> int:
        people = len(self.people.items) if self.people else 0
        structures = len(self.structures.items) if self.structures else 0
        return people + structures + len(self.side)


def answer(conn: Connection, params: SearchParams) -> Answer:
    """The results page's content for these parameters (see the module docstring); the
    lookups its readings share are made once (`memo`)."""
    with memo.answering():
        return _answer(conn, params)


def _answer(conn: Connection, params: SearchParams) -> Answer:
    if params.q and params.comme != "nom" and not params.type:
        value = identifiers.compact(params.q)
        if value is not None:
            found = by_identifier(conn, params, value)
            if found is not None:
                return found
    tried: list[str] = []
    if params.page == 1 and params.q and "@" not in params.q and identifiers.compact(params.q) is None:
        # a word held nowhere ("cabient"): the box would find nothing, its corrections are searched first
        tried = suggest.corrections(conn, params.q, if_absent=True)
        finding = _found(conn, params, tried)
        if finding:
            return _shown(params, finding)
    result = read(conn, params, as_name=params.comme == "nom")
    if params.page == 1 and result.count <= FEW and params.q and not result.box.address:
        result = corrected(conn, params, result, tried)
    return result


def read(conn: Connection, params: SearchParams, as_name: bool) -> Answer:
    """`run`, read again as a name when that finds nothing (see the module docstring, 3.)."""
    result = run(conn, params, as_name)
    if result.empty and params.page == 1 and result.box.interpreted and not result.box.address:
        # Nothing for "camille de la lanin" read as a name in Lanin: try it all as a name.
        again = run(conn, params, as_name=True)
        if not again.empty:
            again.note = (
                f"Aucun résultat pour {_reading(result.box)} : voici les résultats en lisant « {params.q} » comme un nom."
            )
            return again
    elif not as_name and params.page == 1 and _city_also_a_name(conn, result.box):
        return _name_first(conn, params, result)
    return result


def _city_also_a_name(conn: Connection, box: Criteria) -> bool:
    """Name words and a city that is also a family name, nothing else ("gaelle ponois")."""
    return (
        bool(box.name and box.city_key) and len(box.understood) == 2 and search.is_family_name(conn, box.city_key or "")
    )


def _name_first(conn: Connection, params: SearchParams, result: Answer) -> Answer:
    """"gaelle ponois": Gaëlle PONOIS first, then the Gaëlles of Ponois (one page of each)."""
    again = run(conn, params, as_name=True)
    if not (again.people and again.people.items):
        return result
    _merge(again, result)
    city = next(label for kind, label in result.box.understood if kind == "Ville")
    again.note = (
        f"« {city} » est aussi un nom : d’abord les professionnels nommés « {params.q} », "
        f"puis ceux trouvés pour {_reading(result.box)}."
    )
    return again


def by_identifier(conn: Connection, params: SearchParams, value: str) -> Answer | None:
    """The records a number designates; None when none (the box is then searched as text)."""
    matches = identifiers.lookup(conn, value)
    if not matches:
        return None
    if len(matches) == 1 and params.page == 1:
        m = matches[0]
        return Answer(Criteria(), Criteria(), redirect=detail_url(m.kind, m.key))
    people_ids = search_ids(conn, identifiers.any_of(matches, "pro"))
    structure_ids = identifiers.any_of(matches, "structure")
    label = ("Identifiant", value)
    criteria = Criteria(understood=(label,))
    out = Answer(criteria, criteria, identifier=value)
    out.identified = [(m.kind, m.key, m.label) for m in matches]
    if people_ids:
        out.people = search.Page(1, search.load_people(conn, people_ids), False)
    if structure_ids:
        out.structures = search.Page(1, _structures(conn, _ids_of_structures(conn, structure_ids), {}), False)
    return out


def search_ids(conn: Connection, id_nats: list[str]) -> list[int]:
    """Surrogate ids of these professionals, in the same order."""
    if not id_nats:
        return []
    rows = dict(conn.execute(select(person.c.id_nat, person.c.id).where(person.c.id_nat.in_(id_nats))).all())
    return [rows[i] for i in id_nats if i in rows]


def _ids_of_structures(conn: Connection, tech_ids: list[str]) -> list[int]:
    rows = dict(conn.execute(select(structure.c.tech_id, structure.c.id).where(structure.c.tech_id.in_(tech_ids))).all())
    return [rows[t] for t in tech_ids if t in rows]


def detail_url(kind: str, key: str) -> str:
    return f"/{'pro' if kind == 'pro' else 'structure'}/{quote(key, safe='')}"


def run(conn: Connection, params: SearchParams, as_name: bool) -> Answer:
    """One reading of the box and its results."""
    if not as_name and "@" not in params.q:
        search.read_cities(conn, _phrases(params.q))  # the cities `interpret` may ask, at once
    box = interpret(
        params.q,
        city=lambda key: search.city_label(conn, key),
        surname=lambda key: search.is_family_name(conn, key),
        as_name=as_name,
    )
    criteria = with_filters(
        box,
        profession=params.profession or None,
        savoir_faire=params.savoir_faire or None,
        departement=params.departement or None,
        mailbox_type=params.type or None,
    )
    out = Answer(box, criteria)
    typed = structure_words(params.q, box)
    if params.type in search.STRUCTURE_BOX_TYPES:
        out.structures = structures_page(conn, criteria, typed, params.page, (params.type,), require_boxes=True)
        return out
    if params.comme == "structure":
        out.structures = structures_page(conn, criteria, typed, params.page, search.STRUCTURE_BOX_TYPES, False)
        return out
    out.people = search.search_people(conn, criteria, params.page)
    personal_only = criteria.mailbox_type in search.PERSON_BOX_TYPES
    if out.people.items:
        if params.page == 1 and typed and not personal_only:
            found = words.search(
                conn, typed, size=SIDE_SIZE, departement=criteria.departement, postcode=criteria.postcode, side=True
            )
            if found is not None:
                out.side = _structures(conn, found.ids, found.boxes)
                out.side_more = found.has_next
                out.structures_first = found.exact
            elif criteria.address:
                out.side = search.some_structures(conn, criteria)
        elif params.page == 1 and criteria.address and not personal_only:
            out.side = search.some_structures(conn, criteria)
    elif not personal_only and (typed or criteria.address):
        out.structures = structures_page(conn, criteria, typed, params.page, search.STRUCTURE_BOX_TYPES, False)
        if out.structures.items:
            out.people = None
    return out


def _phrases(text: str) -> list[str]:
    """The runs of words of the box that may name a city (`interpret` asks about some of them)."""
    words = search_key(text).split()
    runs = (" ".join(words[i : i + n]) for n in range(1, MAX_CITY_WORDS + 1) for i in range(len(words) - n + 1))
    return [run for run in runs if not run.replace(" ", "").isdigit()]


def structures_page(
    conn: Connection, criteria: Criteria, typed: list[str], page: int, types: tuple[str, ...], require_boxes: bool
) -> search.Page:
    """A page of structures: named by the words (ranked), else as the criteria say (name order)."""
    if typed and not criteria.address:
        found = words.search(
            conn, typed, page=page, size=search.PAGE_SIZE, departement=criteria.departement,
            postcode=criteria.postcode, types=types, require_boxes=require_boxes,
        )
        if found is not None:
            return search.Page(page, _structures(conn, found.ids, found.boxes, types), found.has_next)
    plain = replace(criteria, profession=None, savoir_faire=None)
    result = search.search_structures(conn, plain, page, types, require_boxes=require_boxes or bool(criteria.address))
    for hit in result.items:
        matched = addressed(hit.boxes, criteria.address) if criteria.address else set()
        hit.boxes, hit.more_boxes = words.ordered_boxes(hit.boxes, matched, max(BOXES_LISTED, len(matched)))
        hit.named_boxes = sum(b.address in matched for b in hit.boxes)
    return result


def addressed(boxes: list[search.Box], address: str) -> set[str]:
    """The boxes a typed address designates, as `search.address_condition` selects them (a
    domain after `@`, else a part of the address): listed first, whatever else the structure has."""
    if address.startswith("@"):
        return {b.address for b in boxes if b.address.lower().partition("@")[2].startswith(address[1:])}
    return {b.address for b in boxes if address in b.address.lower()}


def _structures(
    conn: Connection, ids: list[int], named: dict[int, set[str]], types: tuple[str, ...] = search.STRUCTURE_BOX_TYPES
) -> list[search.StructureHit]:
    hits = search.load_structures(conn, ids, types)
    for hit in hits:
        matched = named.get(hit.id, set())
        hit.boxes, hit.more_boxes = words.ordered_boxes(hit.boxes, matched, max(BOXES_LISTED, len(matched)))
        hit.named_boxes = sum(b.address in matched for b in hit.boxes)
    return hits


def structure_words(text: str, box: Criteria) -> list[str]:
    """The words of the box a structure may be named by: all but a département or a postcode read
    as such (they are filters), and nothing of an address."""
    if box.address:
        return []
    typed = search_key(text).split()
    if box.postcode:
        typed = [w for w in typed if w != box.postcode]
    if box.departement:
        typed = [w for w in typed if departement_code(w) != box.departement]
        name = search_key(vocabulary().departements.get(box.departement, "")).split()
        for i in range(len(typed) - len(name) + 1):
            if name and typed[i : i + len(name)] == name:
                typed = typed[:i] + typed[i + len(name) :]
                break
    return typed


def corrected(conn: Connection, params: SearchParams, result: Answer, tried: Sequence[str] = ()) -> Answer:
    """When the box found nothing: the results of its corrections (up to three, merged when
    several find something: "isabelle lamolex" may be Lamoleix or Lamolel, both shown; the
    first to find a whole page is the last tried). When it found little: the corrections as
    suggestions."""
    if identifiers.compact(params.q) is not None or tried:
        return result  # (the corrections tried before the box all found nothing)
    options = suggest.corrections(conn, params.q, any_word=result.empty)
    if not options:
        return result
    if not result.empty:
        result.suggestions = options
        return result
    found = _found(conn, params, options)
    if not found:
        return result  # every correction was tried and finds nothing: a link to an empty page helps nobody
    return _shown(params, found)


def _found(conn: Connection, params: SearchParams, options: list[str]) -> list[tuple[str, Answer]]:
    """The corrections that find something, with what they find (in order, up to the first
    that finds a whole page: the others' results would come after it)."""
    found: list[tuple[str, Answer]] = []
    for option in options:
        again = read(conn, replace(params, q=option), as_name=params.comme == "nom")
        if not again.empty:
            found.append((option, again))
            if _full(again):
                break
    return found


def _shown(params: SearchParams, found: list[tuple[str, Answer]]) -> Answer:
    """The first correction's results, said so, the others' merged and offered as links."""
    best = found[0][1]
    best.typed, best.shown = params.q, found[0][0]
    best.suggestions = [option for option, _ in found[1:]]  # (those that find nothing are not offered)
    if len(found) > 1:
        best.merged = [option for option, _ in found]
        for _, other in found[1:]:
            _merge(best, other)
    return best


def _full(result: Answer) -> bool:
    """A whole page of people or of structures: another correction's results, merged, would
    only come after them, and are not looked for (nor offered)."""
    return any(page is not None and (page.has_next or len(page.items) >= search.PAGE_SIZE)
               for page in (result.people, result.structures))


def _merge(into: Answer, other: Answer) -> None:
    """Add another correction's first results to these (page 1 only, no next page)."""
    for name in ("people", "structures"):
        mine, theirs = getattr(into, name), getattr(other, name)
        if theirs is None or not theirs.items:
            continue
        if mine is None or not mine.items:
            mine = search.Page(1, [], False)
            setattr(into, name, mine)
        seen = {_identity(i) for i in mine.items}
        mine.items += [i for i in theirs.items if _identity(i) not in seen][: search.PAGE_SIZE]
        mine.has_next = False
    seen = {h.place.tech_id for h in into.side}
    into.side += [h for h in other.side if h.place.tech_id not in seen][:SIDE_SIZE]
    if into.people and into.people.items and into.structures and into.structures.items:
        into.side = (into.side + into.structures.items)[: SIDE_SIZE * 2]
        into.structures = None


def _identity(item: object) -> str:
    return getattr(item, "id_nat", "") or item.place.tech_id  # type: ignore[attr-defined]  # a hit without id_nat is a structure hit, which has .place


def _reading(box: Criteria) -> str:
    return ", ".join(f"{kind.lower()} « {label} »" for kind, label in box.understood)
