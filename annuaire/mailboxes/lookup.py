"""Bulk reads of the referential and of existing mailboxes for validating a whole list.

Every function takes the full set of keys of a list and answers with one
query per BATCH keys, the keys passed as ONE parameter: a JSON array read by
`json_each` on SQLite, an array with `= ANY(…)` on PostgreSQL. Never one
query per line, and no statement with thousands of placeholders to compile
(a 62k-box list must validate in well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import orjson
from sqlalchemy import Connection

BATCH = 100_000


def batches(values: Iterable[Any], size: int = BATCH) -> Iterator[list]:
    chunk: list = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def select_in(conn: Connection, sql: str, column: str, values: Iterable[Any]) -> Iterator[Sequence]:
    """Rows of `sql` (a SELECT whose WHERE holds the marker `{in}`) with `column` in `values`."""
    unique = set(values)
    unique.discard(None)
    ordered = sorted(unique)  # probes in index order: neighbouring keys share pages
    if conn.dialect.name == "postgresql":
        condition, wrap = f"{column} = ANY(%s)", list
    else:
        condition, wrap = f"{column} IN (SELECT value FROM json_each(?))", (lambda chunk: orjson.dumps(chunk).decode())
    statement = sql.replace("{in}", condition)
    for chunk in batches(ordered):
        yield from fetch(conn, statement, (wrap(chunk),))


def fetch(conn: Connection, sql: str, params: tuple = ()) -> list[tuple]:
    """All rows as plain tuples, straight from the driver's cursor (inside the connection's
    transaction): SQLAlchemy's row objects cost more than the query itself at 60k rows."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


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


def persons(conn: Connection, id_nats: Iterable[str]) -> dict[str, Person]:
    """Persons by national id (active or not)."""
    sql = "SELECT id, id_nat, active, profession_code, first_name, last_name FROM person WHERE {in}"
    return {row[1]: Person(row[0], row[1], bool(row[2]), row[3], row[4], row[5]) for row in select_in(conn, sql, "id_nat", id_nats)}


def structures(
    conn: Connection, tech_ids: Iterable[str], idnats: Iterable[str]
) -> tuple[dict[str, Structure], dict[str, Structure]]:
    """Structures by technical id (`F`+FINESS…) and by national id (`1`+FINESS…).

    Several sites may share an idnat in odd data; an active one is preferred.
    """
    sql = "SELECT id, tech_id, idnat, name, active FROM structure WHERE {in}"
    by_tech = {row[1]: Structure(row[0], row[1], row[2], row[3], bool(row[4])) for row in select_in(conn, sql, "tech_id", tech_ids)}
    by_idnat: dict[str, Structure] = {}
    for row in select_in(conn, sql, "idnat", idnats):
        found = Structure(row[0], row[1], row[2], row[3], bool(row[4]))
        if row[2] not in by_idnat or (found.active and not by_idnat[row[2]].active):
            by_idnat[row[2]] = found
    return by_tech, by_idnat


def active_activities(conn: Connection, person_ids: Iterable[int]) -> set[tuple[int, int | None]]:
    """(person id, structure id) of the active activities of these persons."""
    sql = "SELECT person_id, structure_id FROM activity WHERE active AND {in}"
    return {(row[0], row[1]) for row in select_in(conn, sql, "person_id", person_ids)}


def person_name_keys(conn: Connection, last_name_keys: Iterable[str]) -> set[tuple[str, str]]:
    """(first name key, last name key) of the active persons with one of these last names."""
    sql = "SELECT first_name_key, last_name_key FROM person WHERE active AND {in}"
    return {(row[0] or "", row[1] or "") for row in select_in(conn, sql, "last_name_key", last_name_keys)}


@dataclass(slots=True)
class Existing:
    """What the diff needs of a stored mailbox."""

    id: int
    domain: str
    type: str
    active: bool
    digest: int
    source: str


def _existing(row: Sequence) -> Existing:
    return Existing(row[1], row[2], row[3], bool(row[4]), row[5], row[6])


_EXISTING = "SELECT address, id, domain, type, active, digest, source FROM mailbox"


def mailboxes_of_domain(conn: Connection, domain: str) -> dict[str, Existing]:
    """Every stored mailbox of a domain, tombstones included, by address."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows = fetch(conn, f"{_EXISTING} WHERE domain = {mark}", (domain,))
    return {row[0]: _existing(row) for row in rows}


def mailboxes_by_address(conn: Connection, addresses: Iterable[str]) -> dict[str, Existing]:
    """Stored mailboxes (any domain) with one of these addresses."""
    return {row[0]: _existing(row) for row in select_in(conn, f"{_EXISTING} WHERE {{in}}", "address", addresses)}


def all_mailboxes(conn: Connection) -> dict[str, dict[str, Existing]]:
    """Every stored mailbox, grouped by domain (the national import diffs all domains at once)."""
    grouped: dict[str, dict[str, Existing]] = {}
    for row in fetch(conn, _EXISTING):
        grouped.setdefault(row[2], {})[row[0]] = _existing(row)
    return grouped
