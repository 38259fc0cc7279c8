"""Bulk reads of the referential and of existing mailboxes for validating a whole list.

Every function takes the full set of keys of a list and answers with a few
queries (`store.select.select_in`), never one query per line. Referential
answers are cached per engine for as long as the referential does not change
(see `_cached`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import filterfalse
from typing import Any, NamedTuple

from sqlalchemy import Connection

from annuaire.store.select import fetch, mark, select_in


@dataclass(slots=True, frozen=True)
class Person:
    id: int
    id_nat: str
    active: bool
    profession_code: str | None
    first_name: str | None
    last_name: str | None


@dataclass(slots=True, frozen=True)
class Structure:
    id: int
    tech_id: str
    idnat: str | None
    name: str | None
    active: bool


# --- the referential, cached per engine ------------------------------------------------------

# The referential only changes through writers that set `last_updated` (schema
# convention: every change bumps version and last_updated, tombstones too), so
# the three maxima below change whenever anything a lookup returned may have
# changed. Each lookup checks them (three index probes) and starts from an empty
# cache when they moved: a daily republication of a 60k-box domain then costs
# no referential query at all.
_TOKEN_SQL = (
    "SELECT (SELECT max(last_updated) FROM person), (SELECT max(last_updated) FROM structure), "
    "(SELECT max(last_updated) FROM activity)"
)
MAX_CACHED = 1_500_000  # entries per engine before starting afresh (~300 MB at most)


class _Generation:
    """Lookups valid for one state of the referential (None = known to be absent)."""

    def __init__(self, token: tuple) -> None:
        self.token = token
        self.maps: dict[str, dict[Any, Any]] = {}
        self.size = 0


class _ReferentialCache:
    def __init__(self) -> None:
        self._generation: _Generation | None = None

    def generation(self, conn: Connection) -> _Generation:
        # One check per transaction: the lookups of one validation share it.
        transaction = conn.get_transaction()
        seen = conn.info.get("annuaire.referential_token")
        if seen is not None and transaction is not None and seen[0] is transaction:
            token = seen[1]
        else:
            token = tuple(conn.exec_driver_sql(_TOKEN_SQL).one())
            conn.info["annuaire.referential_token"] = (transaction, token)
        current = self._generation
        if current is None or current.token != token or current.size > MAX_CACHED:
            # Threads holding the previous generation keep filling it: it is simply dropped.
            current = self._generation = _Generation(token)
        return current


_caches: weakref.WeakKeyDictionary[Any, _ReferentialCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cached(conn: Connection, kind: str, keys: Iterable[Any], load: Callable[[list], dict[Any, Any]]) -> dict[Any, Any]:
    """`load` (a bulk query) for the keys not cached yet; returns the found values by key."""
    with _caches_lock:
        cache = _caches.get(conn.engine)
        if cache is None:
            cache = _caches[conn.engine] = _ReferentialCache()
    generation = cache.generation(conn)
    known = generation.maps.setdefault(kind, {})
    wanted = set(keys)
    wanted.discard(None)
    missing = list(filterfalse(known.__contains__, wanted))
    if missing:
        found = load(missing)
        for key in missing:
            known[key] = found.get(key)
        generation.size += len(missing)
    # Mapped in C (60k keys a large list); the keys known to be absent are dropped after.
    values = dict(zip(wanted, map(known.__getitem__, wanted), strict=False))
    if None in values.values():
        values = {k: v for k, v in values.items() if v is not None}
    return values


def persons(conn: Connection, id_nats: Iterable[str]) -> dict[str, Person]:
    """Persons by national id (active or not)."""
    sql = "SELECT id, id_nat, active, profession_code, first_name, last_name FROM person WHERE {in}"

    def load(keys: list) -> dict:
        return {r[1]: Person(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in select_in(conn, sql, "id_nat", keys)}

    return _cached(conn, "person", id_nats, load)


_STRUCTURE_SQL = "SELECT id, tech_id, idnat, name, active FROM structure WHERE {in}"


def structures(
    conn: Connection, tech_ids: Iterable[str], idnats: Iterable[str]
) -> tuple[dict[str, Structure], dict[str, Structure]]:
    """Structures by technical id (`F`+FINESS…) and by national id (`1`+FINESS…).

    Several sites may share an idnat in odd data; an active one is preferred.
    """

    def by_tech(keys: list) -> dict:
        return {r[1]: Structure(r[0], r[1], r[2], r[3], bool(r[4])) for r in select_in(conn, _STRUCTURE_SQL, "tech_id", keys)}

    def by_idnat(keys: list) -> dict:
        found: dict[str, Structure] = {}
        for r in select_in(conn, _STRUCTURE_SQL, "idnat", keys):
            site = Structure(r[0], r[1], r[2], r[3], bool(r[4]))
            if r[2] not in found or (site.active and not found[r[2]].active):
                found[r[2]] = site
        return found

    return _cached(conn, "structure_tech", tech_ids, by_tech), _cached(conn, "structure_idnat", idnats, by_idnat)


def active_activities(conn: Connection, person_ids: Iterable[int]) -> dict[int, frozenset[int | None]]:
    """The structure ids of the active activities of each of these persons (every id is a key)."""
    sql = "SELECT person_id, structure_id FROM activity WHERE active AND {in}"

    def load(keys: list) -> dict:
        sites: dict[int, set] = {k: set() for k in keys}
        for r in select_in(conn, sql, "person_id", keys):
            sites[r[0]].add(r[1])
        return {k: frozenset(v) for k, v in sites.items()}

    return _cached(conn, "activity", person_ids, load)


def person_name_keys(conn: Connection, last_name_keys: Iterable[str]) -> set[tuple[str, str]]:
    """(first name key, last name key) of the active persons with one of these last names."""
    sql = "SELECT first_name_key, last_name_key FROM person WHERE active AND {in}"

    def load(keys: list) -> dict:
        firsts: dict[str, set] = {k: set() for k in keys}
        for r in select_in(conn, sql, "last_name_key", keys):
            firsts.setdefault(r[1] or "", set()).add(r[0] or "")
        return {k: frozenset(v) for k, v in firsts.items()}

    return {(first, last) for last, firsts in _cached(conn, "names", last_name_keys, load).items() for first in firsts}


class Existing(NamedTuple):
    """What the diff needs of a stored mailbox (a tuple: 60k of them are built per large list)."""

    id: int
    domain: str
    type: str
    active: bool  # 0/1 on SQLite: use as a truth value
    digest: int


_existing_from = Existing._make


def _existing(row: Sequence) -> Existing:
    return _existing_from(row[1:])


_EXISTING = "SELECT address, id, domain, type, active, digest FROM mailbox"


def mailboxes_of_domain(conn: Connection, domain: str) -> dict[str, Existing]:
    """Every stored mailbox of a domain, tombstones included, by address."""
    # The domain is not read back: one column less to convert, 66k times.
    rows = fetch(conn, f"SELECT address, id, type, active, digest FROM mailbox WHERE domain = {mark(conn)}", (domain,))
    return {address: Existing(id_, domain, type_, active, digest) for address, id_, type_, active, digest in rows}


def mailboxes_by_address(conn: Connection, addresses: Iterable[str], *, other_than: str | None = None) -> dict[str, Existing]:
    """Stored mailboxes with one of these addresses (of any domain, or only of domains other than `other_than`)."""
    sql = f"{_EXISTING} WHERE {{in}}"
    params: tuple[str, ...] = ()
    if other_than is not None:
        sql += f" AND domain <> {mark(conn)}"
        params = (other_than,)
    return {row[0]: _existing(row) for row in select_in(conn, sql, "address", addresses, params)}


def all_mailboxes(conn: Connection) -> dict[str, dict[str, Existing]]:
    """Every stored mailbox, grouped by domain (the national import diffs all domains at once)."""
    grouped: dict[str, dict[str, Existing]] = {}
    for row in fetch(conn, _EXISTING):
        grouped.setdefault(row[2], {})[row[0]] = _existing(row)
    return grouped
