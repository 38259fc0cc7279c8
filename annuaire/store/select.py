"""Reading rows by a large set of keys: the keys passed as ONE parameter.

A JSON array read by `json_each` on SQLite; on PostgreSQL an array with
`= ANY(…)` for short lists and a join with a JSON array for long ones. One
query per BATCH keys, never one query per key, and no statement with
thousands of placeholders to compile.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Connection, String, bindparam, func, literal_column, select

BATCH = 100_000
LONG_ARRAY = 1_000  # PostgreSQL: from this many values on, join with the array instead of `= ANY`


def batches(values: Iterable[Any], size: int = BATCH) -> Iterator[list]:
    chunk: list = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def mark(conn: Connection) -> str:
    """The DB-API placeholder of this connection's driver."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def select_in(conn: Connection, sql: str, column: str, values: Iterable[Any], params: tuple = ()) -> Iterator[Sequence]:
    """Rows of `sql` (a SELECT whose WHERE holds the marker `{in}`, then `params`) with `column` in `values`."""
    unique = set(values)
    unique.discard(None)
    ordered = sorted(unique)  # probes in index order: neighbouring keys share pages
    if conn.dialect.name != "postgresql":
        statement = sql.replace("{in}", f"{column} IN (SELECT value FROM json_each(?))")
        for chunk in batches(ordered):
            yield from fetch(conn, statement, (orjson.dumps(chunk).decode(), *params))
        return
    for chunk in batches(ordered):
        if len(chunk) <= LONG_ARRAY:
            yield from fetch(conn, sql.replace("{in}", f"{column} = ANY(%s)"), (chunk, *params))
            continue
        # A long list: `= ANY` probes it 3× slower than a join, and the driver builds
        # arrays in Python (66k addresses: 0.27 s in all, against 0.06 s this way).
        element = "value::bigint" if isinstance(chunk[0], int) else "value"
        condition = f"{column} IN (SELECT {element} FROM json_array_elements_text(%s::json))"
        yield from fetch(conn, sql.replace("{in}", condition), (orjson.dumps(chunk).decode(), *params))


def fetch(conn: Connection, sql: str, params: tuple = ()) -> list[tuple]:
    """All rows as plain tuples, straight from the driver's cursor (inside the connection's
    transaction): SQLAlchemy's row objects cost more than the query itself at 60k rows."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cast(list[tuple], cursor.fetchall())  # a list with the DB-API drivers in use
    finally:
        cursor.close()


def among(conn: Connection, col: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`col IN values` for a statement built with SQLAlchemy: on SQLite the values are one
    parameter (a JSON array read by `json_each`, as `select_in` does): a statement of thousands
    of placeholders costs more to compile than to run. PostgreSQL gets a plain IN."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        return col.in_(values)
    array = bindparam("values", orjson.dumps(values).decode(), type_=String, unique=True)
    return col.in_(select(literal_column("value")).select_from(func.json_each(array)))
