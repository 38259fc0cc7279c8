"""Compiling a parsed search into SQL on the store's indexes, and running it.

Every condition is `rid IN (<indexed lookup>)` or a predicate on the cache
row itself; the page is `rid > last ORDER BY rid LIMIT n+1` on the cache's
primary key. The lookups only use indexed columns:
- names: `person.last_name_key` / `first_name_key` prefix ranges
  (`search_key` + `starts_with`), `:contains` through the trigram
  indexes of annuaire.store.contains; organisation names and cities likewise;
- identifiers: the unique/indexed id columns (id_nat, idnat, finess, siret…);
- mailboxes: `fhir_telecom` (address, domain, type), which holds exactly the
  published mailboxes as rendered (never liste rouge);
- coded values without a column index: `fhir_token`.
Only content parameters exclude inactive resources (an inactive resource has
no name, telecom, codes…); identifiers, `_id`, `_lastUpdated` and `active`
also find inactive ones, as incremental sync needs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import False_

from annuaire.errors import InvalidInput
from annuaire.fhir import codes as cs
from annuaire.fhir import ids, packing
from annuaire.fhir.params import Clause, DateRange, Search
from annuaire.fhir.statements import RIDS, listing, rid_in, rows, run, sql_rows
from annuaire.fhir.tables import (
    INACTIVE_INDEX,
    ORGANIZATION,
    ROLE,
    fhir_legal_entity,
    fhir_resource,
    fhir_telecom,
    fhir_token,
    token_param,
    token_system,
)
from annuaire.store import contains, dialect
from annuaire.store.bound import eq
from annuaire.store.keys import search_key
from annuaire.store.prefix import starts_with
from annuaire.store.schema import activity, person, skill, structure
from annuaire.store.select import mark

f = fhir_resource


# --- helpers -----------------------------------------------------------------


def _key(name: str, value: str) -> str:
    key = search_key(value)
    if not key:
        raise InvalidInput(f"Parameter {name}: {value!r} has no letter or digit to search for")
    return key


def _token(value: str) -> tuple[str | None, str]:
    """`system|code` -> (system, code); `code` -> (None, code); `system|` -> (system, '')."""
    if "|" in value:
        system, _, code = value.partition("|")
        return system, code
    return None, value


@dataclass
class Sel:
    """A condition "rid is one of these ids": the id lookups (OR'ed) can drive
    the query when they are few, or be probed row by row (EXISTS) when many."""

    branches: list  # selects of one id column each
    plain: Any = None  # an equivalent predicate on the cache row, if any
    natural: tuple = ()  # indexes of branches that already yield ids in ascending order
    key: Any = None  # one branch reading a range of this indexed key column: pages follow (key, id)

    def expr(self) -> ColumnElement:
        if self.plain is not None:
            return self.plain
        return or_(*[exists(b.where(b.selected_columns[0] == f.c.rid)) for b in self.branches])


# What a search parameter compiles to: a predicate on the cache row, or an id lookup.
Cond = ColumnElement[Any] | Sel


def _in(select_ids: Any) -> Sel:
    return Sel([select_ids])


def _expr(item: Any) -> ColumnElement:
    return item.expr() if isinstance(item, Sel) else item


# Which condition drives a query when several could (most selective first).
DRIVER_RANK = {
    "_id": 0, "identifier": 1, "mailbox-mss": 2, "practitioner": 3, "organization": 3, "partof": 3,
    "family": 4, "name": 5, "given": 6, "address-postalcode": 6, "address-line": 6, "address-city": 7,
    "address": 7, "qualification-code": 8, "role": 9, "type": 9, "mailbox-mss-type": 9,
}


# The conditions every search has, built once (and their statement cache keys with them).
OF_KIND = {kind: f.c.kind == kind for kind in ids.TYPES.values()}
ACTIVE = f.c.active == true()
# Cache keys of statement parts that live as long as the process (statements.run's `memo`):
# generated once instead of once per search.
KEPT: dict[int, Any] = {id(part): part._generate_cache_key() for part in (*OF_KIND.values(), ACTIVE)}

# Parameters that also find inactive resources (the others are about content they no longer have).
NOT_CONTENT = ("_id", "_lastUpdated", "_profile", "active", "identifier", "identifier-type")


def _naming(clause: Clause, exc: InvalidInput) -> InvalidInput:
    """An error met while compiling a clause, naming the parameter as the client wrote it."""
    written = clause.name + (f":{clause.modifier}" if clause.modifier else "")
    if f"parameter {written}" in exc.message.lower() or f"parameter {clause.name}:" in exc.message.lower():
        return exc
    return InvalidInput(f"Parameter {written}: {exc.message}")


@dataclass
class SqlPlan:
    """Conditions on the cache rows, and the id lookup that drives the page (if any)."""

    conditions: list
    driver: Sel | None
    tiny: bool = False  # the driver is an id or identifier lookup: a handful of candidates
    keys: dict = field(default_factory=dict)  # cache keys of its parts (statements.run)

    @property
    def keyed(self) -> bool:
        """Pages in the order of the driving name's index, (key, id): a page reads its own
        entries of the range, where id order would read (and sort) the whole range."""
        return self.driver is not None and self.driver.key is not None and len(self.driver.branches) == 1


class Compiler:
    def __init__(self, bind: Any) -> None:
        self.bind = bind  # the store (or its engine, or an engine's name): which trigram index to read

    def conditions(self, search: Search) -> SqlPlan:
        kind = ids.TYPES[search.resource_type]
        items: list[tuple[int, Any]] = []
        content = False
        for clause in search.clauses:
            method = getattr(self, "p_" + clause.name.lstrip("_").replace("-", "_"))
            try:
                alternatives = [method(search.resource_type, clause, v) for v in clause.values]
            except InvalidInput as exc:
                raise _naming(clause, exc) from None
            if all(isinstance(a, Sel) for a in alternatives):
                item: Any = _any(alternatives)
            else:
                item = or_(*[_expr(a) for a in alternatives]) if len(alternatives) > 1 else alternatives[0]
            items.append((DRIVER_RANK.get(clause.name, 50), item))
            content = content or clause.name not in NOT_CONTENT
        drivers = sorted((rank, i) for i, (rank, item) in enumerate(items) if isinstance(item, Sel))
        driver = items[drivers[0][1]][1] if drivers else None
        conditions: list[ColumnElement] = [OF_KIND[kind]]
        conditions += [_expr(item) for _, item in items if item is not driver]
        if content:
            conditions.append(ACTIVE)
        tiny = bool(drivers) and drivers[0][0] <= DRIVER_RANK["identifier"]
        return SqlPlan(conditions, driver, tiny, keys=dict(KEPT))

    # --- common ---

    def p_id(self, rtype: str, clause: Clause, value: str) -> Cond:
        try:
            rid, person_id = ids.parse(rtype, value.strip())
        except ValueError:
            return false()
        cond = f.c.rid == rid
        if person_id is not None:  # a role id names its practitioner too
            cond = and_(cond, f.c.rid.in_(select(activity.c.id).where((activity.c.id == rid) & (activity.c.person_id == person_id))))
        return cond

    def p_lastUpdated(self, rtype: str, clause: Clause, r: DateRange) -> Sel:
        g = fhir_resource.alias("g")
        lookup = select(g.c.rid).where((g.c.kind == ids.TYPES[rtype]) & self._date(g.c.last_updated, r))
        # in a row-by-row probe the index must not be used: coalesce() hides it
        return Sel([lookup], self._date(func.coalesce(f.c.last_updated, ""), r))

    def _date(self, col: Any, r: DateRange) -> ColumnElement:
        return {
            "eq": and_(col >= r.start, col < r.end),
            "ap": and_(col >= r.start, col < r.end),
            "ne": or_(col < r.start, col >= r.end),
            "gt": col >= r.end,
            "sa": col >= r.end,
            "lt": col < r.start,
            "eb": col < r.start,
            "ge": col >= r.start,
            "le": col < r.end,
        }[r.prefix]

    def p_active(self, rtype: str, clause: Clause, value: str) -> Cond:
        return f.c.active == (true() if value == "true" else false())

    def p_profile(self, rtype: str, clause: Clause, value: str) -> Cond:
        """Every resource of a type claims the same profiles (meta.profile, inactive ones
        included): a profile of the type selects them all, any other none (not an error)."""
        return true() if value.strip() in cs.PROFILES[rtype] else false()

    # --- strings ---

    def _string(self, name: str, clause: Clause, value: str, key_col: Any, raw_col: Any, target: str | None,
                id_col: Any, where: ColumnElement | None = None) -> Cond:
        base = select(id_col)
        if where is not None:
            base = base.where(where)
        if clause.modifier == "contains":
            if target is None:
                raise InvalidInput(f"Modifier :contains is not supported on parameter {clause.name}")
            lookup = contains.contains_ids(self.bind, target, value)
            if where is not None:
                return _in(base.where(id_col.in_(lookup)))
            return Sel([lookup], natural=(0,) if contains.ids_ascending(self.bind) else ())
        key = _key(clause.name, value)
        if clause.modifier == "exact":
            cond = eq(key_col, key)
            if raw_col is not None:
                cond = and_(cond, eq(raw_col, value))
            return Sel([base.where(cond)], key=key_col)
        return Sel([base.where(starts_with(key_col, key))], key=key_col)

    def p_family(self, rtype: str, clause: Clause, value: str) -> Cond:
        return self._string("family", clause, value, person.c.last_name_key, person.c.last_name,
                            "person.last_name_key", person.c.id)

    def p_given(self, rtype: str, clause: Clause, value: str) -> Cond:
        return self._string("given", clause, value, person.c.first_name_key, person.c.first_name,
                            "person.first_name_key", person.c.id)

    def p_name(self, rtype: str, clause: Clause, value: str) -> Cond:
        if rtype == "Organization":
            return self._string("name", clause, value, structure.c.name_key, structure.c.name, "structure.name_key", structure.c.id)
        if clause.modifier == "contains":  # one index query over both names
            return self._string("name", clause, value, None, None, "person.name", person.c.id)
        alternatives = [self.p_family(rtype, clause, value), self.p_given(rtype, clause, value)]
        words = search_key(value).split()
        if clause.modifier is None and len(words) > 1:
            # "dupont cam": family = leading words, given starts with the rest (and the reverse).
            for i in range(1, len(words)):
                head, tail = " ".join(words[:i]), " ".join(words[i:])
                alternatives.append(_in(select(person.c.id).where(eq(person.c.last_name_key, head) & starts_with(person.c.first_name_key, tail))))
                alternatives.append(_in(select(person.c.id).where(eq(person.c.first_name_key, head) & starts_with(person.c.last_name_key, tail))))
        return _any(alternatives)

    def p_address(self, rtype: str, clause: Clause, value: str) -> Cond:
        return _any([
            self.p_address_city(rtype, clause, value),
            self.p_address_postalcode(rtype, clause, value),
            self.p_address_line(rtype, clause, value),
        ])

    def p_address_city(self, rtype: str, clause: Clause, value: str) -> Cond:
        return self._string("address-city", clause, value, structure.c.city_key, None, "structure.city_key", structure.c.id)

    def p_address_postalcode(self, rtype: str, clause: Clause, value: str) -> Cond:
        code = value.strip().upper()
        if clause.modifier == "contains":
            # no trigram index on postal codes: a LIKE over the postcode index (a scan of it),
            # skipped for a fragment without digits (French postal codes are digits)
            if not any(c.isdigit() for c in _fragment(code)):
                return false()
            cond: ColumnElement[bool] = structure.c.postcode.like(_inside(code), escape="\\")
        elif clause.modifier == "exact":
            cond = eq(structure.c.postcode, code)
        else:
            cond = starts_with(structure.c.postcode, code)
        return _in(select(structure.c.id).where(cond))

    def p_address_line(self, rtype: str, clause: Clause, value: str) -> Cond:
        key = _key(clause.name, value)
        t = fhir_token
        if clause.modifier == "contains":
            # no trigram index on lines: a LIKE over the range of the address-line tokens
            cond: ColumnElement[bool] = t.c.code.like(_inside(_fragment(key)), escape="\\")
        elif clause.modifier == "exact":
            cond = eq(t.c.code, key)
        else:
            cond = starts_with(t.c.code, key)
        return _in(select(t.c.rid).where(and_(eq(t.c.kind, ORGANIZATION), eq(t.c.param, token_param("address-line")),
                                              eq(t.c.system, token_system("")), cond)))

    def p_number_smartcard(self, rtype: str, clause: Clause, value: str) -> Cond:
        return false()  # the public referential carries no CPS card data

    def p_type_smartcard(self, rtype: str, clause: Clause, value: str) -> Cond:
        return false()

    def p_pharmacy_licence(self, rtype: str, clause: Clause, value: str) -> Cond:
        return false()  # no licence numbers in the public referential

    # --- mailboxes ---

    def p_mailbox_mss(self, rtype: str, clause: Clause, value: str) -> Cond:
        t = fhir_telecom
        kind = ids.TYPES[rtype]
        text = value.strip().lower()
        if not text:
            raise InvalidInput("Parameter mailbox-mss has an empty value")
        if clause.modifier == "exact":
            cond = eq(t.c.address, text)
        elif clause.modifier == "contains":
            local, at, domain = text.rpartition("@")
            if at:
                # "…x@dom…": the domain starts with what follows the @ (indexed),
                # the local part ends with what precedes it.
                cond = starts_with(t.c.domain, domain) if domain else t.c.domain.is_not(None)
                if local:
                    cond = and_(cond, t.c.address.like("%" + _like_escape(local) + "@%", escape="\\"))
            else:
                ids_ = contains.contains_ids(self.bind, "mailbox.address", text)
                cond = t.c.mailbox_id.in_(ids_)
        else:
            cond = starts_with(t.c.address, text)
        return _in(select(t.c.rid).where(and_(eq(t.c.kind, kind), cond)))

    def p_mailbox_mss_type(self, rtype: str, clause: Clause, value: str) -> Cond:
        system, code = _token(value)
        if system not in (None, cs.TYPE_BAL):
            return false()
        t = fhir_telecom
        kind = ids.TYPES[rtype]
        cond = and_(eq(t.c.kind, kind), eq(t.c.type, code.upper())) if code else eq(t.c.kind, kind)
        return _in(select(t.c.rid).where(cond))

    # --- tokens ---

    def _tokens(self, rtype: str, param: str, value: str) -> Cond:
        system, code = _token(value)
        t = fhir_token
        conds = [eq(t.c.kind, ids.TYPES[rtype]), eq(t.c.param, token_param(param))]
        if code:
            conds.append(eq(t.c.code, code))
        if system is not None:
            conds.append(eq(t.c.system, token_system(system)))
        cond = and_(*conds)
        return _in(select(t.c.rid).where(cond))

    def p_qualification_code(self, rtype: str, clause: Clause, value: str) -> Cond:
        system, code = _token(value)
        alternatives: list[Cond] = []
        # Profession and savoir-faire codes have their own indexes in the store.
        if system in (None, cs.PROFESSION):
            alternatives.append(_in(select(person.c.id).where(eq(person.c.profession_code, code))) if code
                                else _in(select(person.c.id).where(person.c.profession_code.is_not(None))))
        skill_systems = set(cs.SKILL_SYSTEMS.values())
        if system is None or system in skill_systems:
            wanted = [k for k, v in cs.SKILL_SYSTEMS.items() if v == system]
            cond = skill.c.active == true()
            if code:
                cond = cond & eq(skill.c.code, code)
            if system is not None:
                cond = cond & skill.c.type_code.in_(wanted)
            if code or system is not None:
                alternatives.append(_in(select(skill.c.person_id).where(cond)))
        if system is None or system not in skill_systems | {cs.PROFESSION}:
            alternatives.append(self._tokens(rtype, "qualification-code", value))
        return _any(alternatives) if alternatives else false()

    def p_role(self, rtype: str, clause: Clause, value: str) -> Cond:
        return self._tokens(rtype, "role", value)

    def p_type(self, rtype: str, clause: Clause, value: str) -> Cond:
        system, code = _token(value)
        if system in (None, cs.V2_3307) and code in ("GEOGRAPHICAL-ENTITY", "LEGAL-ENTITY"):
            return f.c.rid > 0 if code == "GEOGRAPHICAL-ENTITY" else f.c.rid < 0
        return self._tokens(rtype, "type", value)

    def p_data_registration_authority(self, rtype: str, clause: Clause, value: str) -> Cond:
        if rtype == "Organization":
            return false()  # structures carry no registration authority in the public files
        _, code = _token(value)
        return self._tokens(rtype, "data-registration-authority", code)

    def p_data_information_system(self, rtype: str, clause: Clause, value: str) -> Cond:
        system, code = _token(value)
        if system not in (None, cs.DATA_INFORMATION_SYSTEM):
            return false()
        if rtype != "Organization":
            return true() if code == "RPPS" else false()
        finess = and_(structure.c.tech_id >= "F", structure.c.tech_id < "G")
        if code == "FINESS":
            return _any([f.c.rid < 0, _in(select(structure.c.id).where(finess))])
        if code == "RPPS":
            return _in(select(structure.c.id).where(~finess))
        return false()

    # --- identifiers ---

    def p_identifier(self, rtype: str, clause: Clause, value: str) -> Cond:
        system, code = _token(value)
        code = code.strip()
        if rtype == "Practitioner":
            if system is None:
                if not code:
                    return false()
                return _in(select(person.c.id).where(or_(eq(person.c.id_nat, code), eq(person.c.id_nat, "8" + code))))
            if system == cs.IDNPS:
                return _in(select(person.c.id).where(eq(person.c.id_nat, code))) if code else true()
            if system in cs.RPPS_ALIASES:
                if not code:
                    return _in(select(person.c.id).where(person.c.id_type == "8"))
                return _in(select(person.c.id).where(eq(person.c.id_nat, "8" + code)))
            return false()
        if rtype == "PractitionerRole":
            if system not in (None, *cs.RPPS_ALIASES):
                return false()
            if not code:
                return true()
            return f.c.rid == int(code) if code.isascii() and code.isdigit() and len(code) < 19 else false()
        return self._org_identifier(system, code)

    def _org_identifier(self, system: str | None, code: str) -> Cond:
        s, le = structure, fhir_legal_entity
        sites = lambda cond: _in(select(s.c.id).where(cond))
        legal = lambda cond: _in(select(-le.c.id).where(cond))
        if system is None:
            if not code:
                return false()
            return _any([
                sites(eq(s.c.idnat, code)), sites(eq(s.c.finess, code)), sites(eq(s.c.siret, code)), sites(eq(s.c.tech_id, code)),
                legal(eq(le.c.finess, code)), legal(eq(le.c.finess, code[1:])) if code.startswith("1") else false(),
            ])
        if system == cs.IDNST:
            if not code:
                return true()
            return _any([sites(eq(s.c.idnat, code)), legal(eq(le.c.finess, code[1:])) if code.startswith("1") else false()])
        if system == cs.FINESS:
            if not code:
                return _any([f.c.rid < 0, sites(s.c.finess.is_not(None))])
            return _any([sites(eq(s.c.finess, code)), legal(eq(le.c.finess, code))])
        if system == cs.SIRENE:
            if not code:
                return sites(or_(s.c.siret.is_not(None), s.c.siren.is_not(None)))
            if len(code) == 14:
                return sites(eq(s.c.siret, code))
            return sites(starts_with(s.c.siret, code))  # SIREN = SIRET prefix
        if system in (*cs.RPPS_ALIASES, cs.RPPS_RANG):
            return sites(eq(s.c.tech_id, code)) if code else f.c.rid > 0
        return false()

    def p_identifier_type(self, rtype: str, clause: Clause, value: str) -> Cond:
        system, code = _token(value)
        if system not in (None, cs.V2_0203):
            return false()
        s = structure
        if rtype == "Practitioner":
            kinds: dict[str, Cond] = {"IDNPS": true(), "RPPS": _in(select(person.c.id).where(person.c.id_type == "8"))}
            return kinds.get(code, false())
        return {
            "IDNST": _any([f.c.rid < 0, _in(select(s.c.id).where(s.c.idnat.is_not(None)))]),
            "FINEG": _in(select(s.c.id).where(s.c.finess.is_not(None))),
            "FINEJ": f.c.rid < 0,
            "SIRET": _in(select(s.c.id).where(s.c.siret.is_not(None))),
            "SIREN": _in(select(s.c.id).where(s.c.siren.is_not(None))),
            "INTRN": f.c.rid > 0,
        }.get(code, false())

    # --- references ---

    def _reference(self, target: str, value: str) -> int | None:
        text = value.strip()
        if "/" in text:
            rtype, _, text = text.rpartition("/")
            rtype = rtype.rsplit("/", 1)[-1]
            if rtype != target:
                raise InvalidInput(f"Reference {value!r} does not point to a {target}")
        try:
            return ids.parse(target, text)[0]
        except ValueError:
            return None

    def p_practitioner(self, rtype: str, clause: Clause, value: str) -> Cond:
        pid = self._reference("Practitioner", value)
        return _in(select(activity.c.id).where(eq(activity.c.person_id, pid))) if pid is not None else false()

    def p_organization(self, rtype: str, clause: Clause, value: str) -> Cond:
        rid = self._reference("Organization", value)
        if rid is None or rid < 0:
            return false()  # roles point to sites
        return _in(select(activity.c.id).where(eq(activity.c.structure_id, rid)))

    def p_partof(self, rtype: str, clause: Clause, value: str) -> Cond:
        rid = self._reference("Organization", value)
        if rid is None or rid >= 0:
            return false()
        le = fhir_legal_entity
        return _in(select(structure.c.id).where(structure.c.finess_ej == select(le.c.finess).where(le.c.id == -rid).scalar_subquery()))


def _any(alternatives: list) -> Any:
    """OR of alternatives: a union when each is an id lookup (so it can drive)."""
    alternatives = [a for a in alternatives if not isinstance(a, False_)]
    if alternatives and all(isinstance(a, Sel) for a in alternatives):
        if len(alternatives) == 1:
            return alternatives[0]
        branches, natural, offset = [], [], 0
        for a in alternatives:
            branches += a.branches
            natural += [offset + i for i in a.natural]
            offset += len(a.branches)
        plain = or_(*[a.expr() for a in alternatives]) if any(a.plain is not None for a in alternatives) else None
        return Sel(branches, plain, tuple(natural))
    return or_(*[_expr(a) for a in alternatives]) if alternatives else false()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _inside(text: str) -> str:
    return "%" + _like_escape(text) + "%"


def _fragment(text: str) -> str:
    """A `:contains` fragment searched without a trigram index: as long as those searched with one."""
    if len(text) < contains.MIN_FRAGMENT:
        raise InvalidInput(f"a 'contains' search needs at least {contains.MIN_FRAGMENT} letters or digits, got {text!r}")
    return text


# --- running -----------------------------------------------------------------


@dataclass
class Page:
    rows: list[tuple[int, bytes]]  # (rid, json) of the matches, in the plan's order
    more: bool
    total: int | None
    last: Any = None  # the Position of the last row (next links)


DRIVE_LIMIT = 500  # best-effort totals are counted exactly up to this many candidates
WALK_THRESHOLD = 20_000  # more candidates than this: walk the cache in id order instead


def _candidates(conn: Connection, plan: SqlPlan, after: int | None, bounds_: tuple[int, int], limit: int) -> list[int]:
    """The next `limit` candidate ids of the driving lookup, in id order.

    Each OR'ed lookup is asked separately and the sorted lists merged (a SQL
    UNION would build and sort the whole set). `+0` keeps the engine from
    walking an id index hoping to fill the LIMIT: it reads the lookup's own
    index range (a name prefix, a domain…) and keeps the smallest ids, which
    is cheap even for tens of thousands of entries.
    """
    lists = []
    assert plan.driver is not None
    values = {"lo": bounds_[0], "hi": bounds_[1], "after": after, "limit": limit}
    for i, branch in enumerate(plan.driver.branches):
        natural = i in plan.driver.natural
        found = run(conn, f"candidates natural={natural} after={after is not None}", (branch,),
                    partial(_sorted_ids, branch, natural, after is not None), values, memo=plan.keys)
        lists.append([r[0] for r in found])
    if len(lists) == 1:
        return list(lists[0])
    out: list[int] = []
    for rid in heapq.merge(*lists):
        if not out or out[-1] != rid:
            out.append(rid)
            if len(out) == limit:
                break
    return out


def _listed(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int], limit: int) -> list[int]:
    """Every candidate id in id order, or more than `limit` of them (then not all)."""
    assert plan.driver is not None
    found: set[int] = set()
    for branch in plan.driver.branches:
        values = {"lo": bounds_[0], "hi": bounds_[1], "limit": limit + 1}
        found.update(r[0] for r in run(conn, "listed", (branch,), partial(_ids_within, branch), values, memo=plan.keys))
        if len(found) > limit:
            break
    return sorted(found)


def _ids_within(branch: Any) -> Any:
    """The statement of `_listed` for one lookup: its ids within the bounds, up to `limit`, unsorted."""
    cid = list(branch.subquery("c").c)[0]
    return select(cid).where(and_(cid >= _id("lo"), cid <= _id("hi"))).limit(_id("limit"))


def _sorted_ids(branch: Any, natural: bool, after: bool) -> Any:
    """The statement of `_candidates` for one lookup (lo, hi, after, limit bound at run time)."""
    cid = list(branch.subquery("c").c)[0]
    key = cid if natural else cid + 0
    where = and_(key >= _id("lo"), key <= _id("hi"))
    if after:
        where = and_(where, key > _id("after"))
    return select(cid).where(where).order_by(key).limit(_id("limit"))


def _id(name: str) -> Any:
    return bindparam(name, type_=BigInteger)


def _counted(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int], limit: int) -> int:
    """Candidates (each branch's, added up), counted without sorting and
    stopping once there are more than `limit`: exact up to `limit`."""
    total = 0
    assert plan.driver is not None
    for branch in plan.driver.branches:
        values = {"lo": bounds_[0], "hi": bounds_[1], "limit": limit + 1 - total}
        total += run(conn, "count", (branch,), partial(_count_ids, branch), values, memo=plan.keys)[0][0]
        if total > limit:
            break
    return total


def _count_ids(branch: Any) -> Any:
    """The statement of `_counted` for one lookup: a count that stops at `limit`."""
    cid = list(branch.subquery("c").c)[0]
    inner = select(cid).where(and_(cid >= _id("lo"), cid <= _id("hi"))).limit(_id("limit")).subquery()
    return select(func.count()).select_from(inner)


def _few(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int]) -> bool:
    """At most DRIVE_LIMIT candidates?"""
    return _counted(conn, plan, bounds_, DRIVE_LIMIT) <= DRIVE_LIMIT


def _dense(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int]) -> bool:
    """So many candidates (> WALK_THRESHOLD) that walking the cache in id
    order fills a page sooner than sorting them (a profession, a role code)."""
    assert plan.driver is not None
    if plan.driver.plain is not None:
        return True
    if len(plan.driver.natural) == len(plan.driver.branches):
        return False  # already in id order: driving is always cheap
    return _counted(conn, plan, bounds_, WALK_THRESHOLD) > WALK_THRESHOLD


def _size(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int]) -> tuple[bool, bool]:
    """(few, dense). When density takes a count, one count up to WALK_THRESHOLD
    answers both: a round trip less, reading no more than the second count would."""
    assert plan.driver is not None
    if plan.driver.plain is not None or len(plan.driver.natural) == len(plan.driver.branches):
        few = _few(conn, plan, bounds_)
        return few, not few and _dense(conn, plan, bounds_)  # (no query)
    n = _counted(conn, plan, bounds_, WALK_THRESHOLD)
    return n <= DRIVE_LIMIT, n > WALK_THRESHOLD


def _filtered(conn: Connection, plan: SqlPlan, candidates: list[int], columns: list, limit: int | None,
              ordered: bool = False) -> list:
    """Cache rows of these candidates that pass the other conditions: in rid order, or in the
    candidates' own order when `ordered` (a keyed plan's). Sorted here: with an ORDER BY, SQLite
    took twice as long over a list of ids (1.6 ms instead of 0.7 for 446 ids)."""
    out: list = []
    i, size = 0, (limit + 8 if limit is not None else 500)  # most candidates pass: read little first
    tag = "filtered " + ",".join(c.name for c in columns)
    while i < len(candidates):
        chunk = candidates[i : i + size]
        found = run(conn, tag, plan.conditions, lambda: select(*columns).where(and_(*plan.conditions, rid_in())),
                    rids=chunk, memo=plan.keys)
        if ordered:
            place = {rid: n for n, rid in enumerate(chunk)}
            found.sort(key=lambda r: place[r[0]])
        else:
            found.sort(key=itemgetter(0))
        out += found
        if limit is not None and len(out) >= limit:
            return out[:limit]
        i, size = i + size, 2000
    return out


def _driven(conn: Connection, plan: SqlPlan, after: int | None, bounds_: tuple[int, int], columns: list,
            limit: int | None) -> list:
    """Rows found from the driving lookup, batch after batch until `limit`."""
    out: list = []
    batch = max(2 * limit, 64) if limit is not None else 20_000
    while True:
        candidates = _candidates(conn, plan, after, bounds_, batch)
        if not candidates:
            return out
        out += _filtered(conn, plan, candidates, columns, None if limit is None else limit - len(out))
        if (limit is not None and len(out) >= limit) or len(candidates) < batch:
            return out
        after, batch = candidates[-1], min(batch * 4, 20_000)


def _walk(plan: SqlPlan, columns: list, after: int | None, bounds_: tuple[int, int]) -> Any:
    """The cache in id order, every condition checked per row."""
    lo, hi = bounds_
    conds = list(plan.conditions)
    if plan.driver is not None:
        conds.append(plan.driver.expr())
    where = and_(*conds, f.c.rid >= lo, f.c.rid <= hi)
    if after is not None:
        where = and_(where, f.c.rid > after)
    return select(*columns).where(where)


def _walks(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int], after: int | None) -> bool:
    """Walk the cache rather than drive? Without a lookup, or when it has
    many candidates (not few, and dense)."""
    if plan.driver is None:
        return True
    few, dense = _size(conn, plan, bounds_)
    return not few and dense


# Where a page ends, for the next one: the last rid, or [key, rid] in a keyed plan's order.
Position = int | list


def run_page(conn: Connection, plan: SqlPlan, after: Position | None, bounds_: tuple[int, int], count: int) -> Page:
    columns = [f.c.rid, f.c.json]
    if plan.keyed != isinstance(after, list):  # (a link issued by another version of the server)
        raise InvalidInput("Invalid page id: not a link of this search; start the search again")
    if isinstance(after, list):
        found, keys = _keyed_driven(conn, plan, after, bounds_, columns, count + 1)
        return _page(conn, found, count, None, keys)
    if _walks(conn, plan, bounds_, after):
        found = rows(conn, _walk(plan, columns, after, bounds_).order_by(f.c.rid).limit(count + 1))
    else:
        found = _driven(conn, plan, after, bounds_, columns, count + 1)
    return _page(conn, found, count, None)


def _page(conn: Connection, found: list, count: int, total: int | None, keys: dict[int, str] | None = None) -> Page:
    """A page of `count` of the rows found (one more tells that more follow), bodies unpacked."""
    page = [(r[0], packing.unpack(conn, r[1])) for r in found[:count]]
    return Page(page, len(found) > count, total, _position(page, keys))


def _position(page: list[tuple[int, bytes]], keys: dict[int, str] | None) -> Position | None:
    """Where the next page starts: after the last row's rid, or its (key, rid) in a keyed plan."""
    if not page:
        return None
    rid = page[-1][0]
    return [keys[rid], rid] if keys is not None else rid


def first_page(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int], count: int, total_mode: str) -> Page:
    """Page one and the total, sharing the work: the first DRIVE_LIMIT+1
    candidates are read once; when that is all of them, they give the total."""
    if plan.driver is None:
        first = run_page(conn, plan, None, bounds_, count) if count else Page([], False, None)
        first.total = count_matches(conn, plan, bounds_, total_mode)
        return first
    if plan.keyed:
        return _keyed_first_page(conn, plan, bounds_, count, total_mode)
    natural = plan.tiny or len(plan.driver.natural) == len(plan.driver.branches)
    complete = False  # `candidates` holds all of them
    if natural:  # few or already sorted ids: reading the first ones is the count probe
        candidates = _candidates(conn, plan, None, bounds_, DRIVE_LIMIT + 1)
        few = len(candidates) <= DRIVE_LIMIT
        dense = not few and _dense(conn, plan, bounds_)
    elif dialect.rereads_lookups(conn) and plan.driver.plain is None:
        # One read of every candidate, counted and sorted here: PostgreSQL reads a trigram match
        # from the table itself (the index is lossy), and a count, then a top-k, read it twice.
        candidates = _listed(conn, plan, bounds_, WALK_THRESHOLD)
        few, dense = len(candidates) <= DRIVE_LIMIT, len(candidates) > WALK_THRESHOLD
        natural = complete = not dense
    else:
        few, dense = _size(conn, plan, bounds_)  # a count that stops early: cheaper than sorting many
    if few and total_mode != "none":
        if not natural:
            candidates = _candidates(conn, plan, None, bounds_, DRIVE_LIMIT + 1)
        return _counted_page(conn, plan, candidates, count)
    if not few and dense:  # e.g. a profession, a first full sync: walk the cache
        found = rows(conn, _walk(plan, [f.c.rid, f.c.json], None, bounds_).order_by(f.c.rid).limit(count + 1))
    elif natural:
        found = _filtered(conn, plan, candidates, [f.c.rid, f.c.json], count + 1)
        if len(found) <= count and not few and not complete:
            found += _driven(conn, plan, candidates[-1], bounds_, [f.c.rid, f.c.json], count + 1 - len(found))
    else:
        found = _driven(conn, plan, None, bounds_, [f.c.rid, f.c.json], count + 1)
    total = count_matches(conn, plan, bounds_, total_mode) if total_mode == "accurate" else None
    return _page(conn, found, count, total)


def _counted_page(conn: Connection, plan: SqlPlan, candidates: list[int], count: int,
                  keys: dict[int, str] | None = None) -> Page:
    """The first page of all (at most DRIVE_LIMIT) candidates, and their exact total."""
    if len(candidates) <= count:  # one query for the total and the page
        found = _filtered(conn, plan, candidates, [f.c.rid, f.c.json], None, ordered=keys is not None)
        return _page(conn, found, count, len(found), keys)
    matched = active_among(conn, plan, candidates)
    if matched is None:
        matched = [r[0] for r in _filtered(conn, plan, candidates, [f.c.rid], None, ordered=keys is not None)]
    page = matched[:count]
    bodies = resources(conn, plan_kind(plan), page, active_only=False) if page else {}
    found = [(rid, bodies[rid]) for rid in page if rid in bodies]
    return Page(found, len(matched) > count, len(matched), _position(found, keys))


def _keyed_first_page(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int], count: int, total_mode: str) -> Page:
    """Page one of a keyed plan: a count that stops after DRIVE_LIMIT entries tells whether
    the total is given; the page is the range's first entries that pass."""
    few = total_mode != "none" and _few(conn, plan, bounds_)
    if few:
        keys = _keyed_candidates(conn, plan, None, bounds_, DRIVE_LIMIT + 1)
        return _counted_page(conn, plan, list(keys), count, keys)
    found, keys = _keyed_driven(conn, plan, None, bounds_, [f.c.rid, f.c.json], count + 1)
    total = count_matches(conn, plan, bounds_, total_mode) if total_mode == "accurate" else None
    return _page(conn, found, count, total, keys)


def _keyed_candidates(conn: Connection, plan: SqlPlan, after: list | None, bounds_: tuple[int, int],
                      limit: int) -> dict[int, str]:
    """The next `limit` candidates of a keyed plan after `after` ([key, rid]), in (key, id)
    order: {id: key}, the dict keeping that order."""
    assert plan.driver is not None
    branch, key = plan.driver.branches[0], plan.driver.key
    values = {"lo": bounds_[0], "hi": bounds_[1], "limit": limit}
    if after is not None:
        values.update(after_key=after[0], after=after[1])
    found = run(conn, f"keyed after={after is not None}", (branch,),
                partial(_keyed_ids, branch, key, after is not None), values, memo=plan.keys)
    return {r[0]: r[1] for r in found}


def _keyed_ids(branch: Any, key: Any, after: bool) -> Any:
    """The statement of `_keyed_candidates`: the lookup's range in its index order. After a
    position, the range restarts at its key; the ids of that key up to it are left out."""
    c = branch.add_columns(key.label("k")).subquery("c")
    cid, ck = list(c.c)
    where = and_(cid >= _id("lo"), cid <= _id("hi"))
    if after:
        k = bindparam("after_key", type_=key.type)
        where = and_(where, ck >= k, or_(ck > k, cid > _id("after")))
    return select(cid, ck).where(where).order_by(ck, cid).limit(_id("limit"))


def _keyed_driven(conn: Connection, plan: SqlPlan, after: list | None, bounds_: tuple[int, int], columns: list,
                  limit: int) -> tuple[list, dict[int, str]]:
    """Rows of a keyed plan from `after` on, batch after batch until `limit`, and the keys of their ids."""
    out: list = []
    keys: dict[int, str] = {}
    batch = max(2 * limit, 64)
    while True:
        candidates = _keyed_candidates(conn, plan, after, bounds_, batch)
        if not candidates:
            return out, keys
        keys.update(candidates)
        out += _filtered(conn, plan, list(candidates), columns, limit - len(out), ordered=True)
        if len(out) >= limit or len(candidates) < batch:
            return out, keys
        last = next(reversed(candidates))
        after, batch = [candidates[last], last], min(batch * 4, 20_000)


# The inactive resources among ids, from their partial index (SQLite's planner, without statistics,
# preferred the covering index of every resource: named).
_INACTIVE_SQL = {
    "?": f"SELECT rid FROM fhir_resource INDEXED BY {INACTIVE_INDEX} WHERE kind = ? AND active = 0 AND rid IN ({RIDS})",
    "%s": f"SELECT rid FROM fhir_resource WHERE kind = %s AND NOT active AND rid IN ({RIDS})",
}


def active_among(conn: Connection, plan: SqlPlan, candidates: list[int]) -> list[int] | None:
    """The candidates, in their order, whose resource is active, when that is all the plan asks of
    a resource besides its kind (one content parameter); else None (`_filtered` checks them).

    Inactive resources are few: the candidates less those in the partial index of inactive ones
    (a few pages) rather than a probe per candidate in the index of the whole cache (~3-6 µs
    each, out of the CPU caches at national scale). Every id within the bounds has its resource
    (the cache renders every record; new ones sort above the bounds)."""
    if len(plan.conditions) != 2 or plan.conditions[1] is not ACTIVE:
        return None
    if not candidates:
        return []
    sql = _INACTIVE_SQL[mark(conn)].replace(RIDS, listing(candidates))  # (≤ DRIVE_LIMIT + 1 of them)
    inactive = {r[0] for r in sql_rows(conn, sql, (plan_kind(plan),))}
    return [rid for rid in candidates if rid not in inactive]


def plan_kind(plan: SqlPlan) -> str:
    return plan.conditions[0].right.value  # conditions[0] is always `kind == <kind>`


_BOUNDS = (
    "SELECT (SELECT min(rid) FROM fhir_resource WHERE kind = {0}), (SELECT max(rid) FROM fhir_resource WHERE kind = {0})"
)
_BOUNDS_SQL = {m: _BOUNDS.format(m) for m in ("?", "%s")}  # by placeholder (`mark`)


def bounds(conn: Connection, kind: str) -> tuple[int, int]:
    """The snapshot of a walk: rids existing now (new records sort outside)."""
    # two subqueries: each is one index probe (min and max in one select would scan)
    lo, hi = sql_rows(conn, _BOUNDS_SQL[mark(conn)], (kind, kind))[0]
    return (lo or 0, hi or 0)


def count_matches(conn: Connection, plan: SqlPlan, bounds_: tuple[int, int], mode: str) -> int | None:
    """Matches in the snapshot. Best effort (the default, and `estimate`):
    exact when there are at most DRIVE_LIMIT candidates, else omitted (None);
    `accurate`: always exact, however long it takes; `none`: omitted."""
    if mode == "none":
        return None
    if plan.driver is not None:
        if _few(conn, plan, bounds_):
            candidates = _candidates(conn, plan, None, bounds_, DRIVE_LIMIT + 1)
            matched = active_among(conn, plan, candidates)
            return len(matched if matched is not None else _filtered(conn, plan, candidates, [f.c.rid], None))
        if mode != "accurate":
            return None
        if plan.driver.plain is None:
            return len(_driven(conn, plan, None, bounds_, [f.c.rid], None))
    stmt = _walk(plan, [literal(1)], None, bounds_)
    if mode == "accurate":
        return conn.execute(select(func.count()).select_from(stmt.subquery())).scalar()
    n = rows(conn, select(func.count()).select_from(stmt.limit(DRIVE_LIMIT + 1).subquery()))[0][0]
    return None if n > DRIVE_LIMIT else n


def _kept(name: tuple, build: Callable[[], Select]) -> Select:
    """A statement built once per process (its cache key in KEPT): `name` says which."""
    stmt = _STATEMENTS.get(name)
    if stmt is None:
        stmt = _STATEMENTS[name] = build()
        KEPT[id(stmt)] = stmt._generate_cache_key()
    return stmt


_STATEMENTS: dict[tuple, Select] = {}


def resources(conn: Connection, kind: str, rids: list[int], active_only: bool = True) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    stmt = _kept(("resources", kind, active_only), lambda: select(f.c.rid, f.c.json).where(
        and_(OF_KIND[kind], rid_in(), *([ACTIVE] if active_only else []))))
    for i in range(0, len(rids), 900):
        found = run(conn, "", (stmt,), lambda: stmt, rids=rids[i : i + 900], memo=KEPT)
        out.update((r[0], packing.unpack(conn, r[1])) for r in found)
    return out


def roles_of(conn: Connection, column: Any, owners: list[int], limit: int) -> list[tuple[int, bytes]]:
    """(owner, served body) of the active roles pointing to these practitioners/sites, in the
    order of their owners and ids (`_revinclude`): their ids from the index on (owner, active),
    then their bodies. (`+ 0`: sorted after, rather than read in the order of the owner's own
    index, which lacks `active` and sent each role to the table: −18 % at national scale.)"""
    if not owners:
        return []
    stmt = _kept(("roles of", column.name, limit), lambda: (
        select(column, activity.c.id).where(rid_in(f"{column.table.name}.{column.name}") & (activity.c.active == true()))
        .order_by(column + 0, activity.c.id).limit(limit)))
    pairs = run(conn, "", (stmt,), lambda: stmt, rids=owners, memo=KEPT)
    bodies = resources(conn, ROLE, [rid for _, rid in pairs])
    return [(owner, bodies[rid]) for owner, rid in pairs if rid in bodies]
