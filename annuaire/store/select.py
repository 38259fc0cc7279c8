"""Reading rows by a large set of keys: the keys passed as ONE parameter.

A JSON array read by `json_each` on SQLite; on PostgreSQL an array with
`= ANY(…)` for short lists and a join with a JSON array for long ones. One
query per BATCH keys, never one query per key, and no statement with
thousands of placeholders to compile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Connection, String, bindparam, func, literal_column, select
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

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


def begun(conn: Connection) -> None:
    """Begin the connection's transaction if none is open, as `Connection.execute` would: the
    driver's cursor (`fetch`) skips SQLAlchemy's autobegin, and the statements of one page read
    one snapshot."""
    if not conn.in_transaction():
        conn.begin()


def among(conn: Connection, col: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`col IN values` for a statement built with SQLAlchemy: on SQLite the values are one
    parameter (a JSON array read by `json_each`, as `select_in` does): a statement of thousands
    of placeholders costs more to compile than to run. PostgreSQL gets a plain IN."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        return col.in_(values)
    array = bindparam("values", orjson.dumps(values).decode(), type_=String, unique=True)
    return col.in_(select(literal_column("value")).select_from(func.json_each(array)))


_PREPARED: dict[tuple[str, str], tuple[str, tuple[str, ...], dict[str, Any], bool]] = {}


def prepared(conn: Connection, key: str, build: Callable[[], ClauseElement], values: Mapping[str, Any]) -> list[tuple]:
    """All rows (plain tuples) of `build()`, a statement whose run-time values are `bindparam(name)`s
    given in `values`, and whose shape `key` names (everything `build` varies on): compiled once per
    engine, then run on the driver's cursor (`fetch`) in the connection's transaction. A lookup
    made through `Connection.execute` costs more in SQLAlchemy (the statement built, its cache key,
    the execution context, Row objects) than the engine spends answering it. Any other value in
    `build()` (a LIMIT) is kept as compiled the first time: what varies must be a placeholder."""
    slot = (conn.dialect.name, key)
    shape = _PREPARED.get(slot)
    if shape is None:
        shape = _PREPARED[slot] = _prepare(conn, build())
    sql, names, constants, positional = shape
    begun(conn)
    given = [values[n] if n in values else constants[n] for n in names]
    params: Any = tuple(given) if positional else dict(zip(names, given, strict=True))  # (named: PostgreSQL's)
    return fetch(conn, sql, params)


def _prepare(conn: Connection, stmt: ClauseElement) -> tuple[str, tuple[str, ...], dict[str, Any], bool]:
    """The SQL of a statement, its placeholders' names in order, the values it holds itself
    (a LIMIT), and whether its placeholders are positional."""
    compiled = cast(SQLCompiler, stmt.compile(dialect=conn.dialect))
    if compiled._bind_processors or compiled.post_compile_params or compiled.literal_execute_params:
        raise ValueError("prepared: a value the driver cannot take as is (a list to expand, a type to convert)")
    constants = dict(compiled.construct_params(_check=False))
    if compiled.positiontup is not None:
        return compiled.string, tuple(compiled.positiontup), constants, True
    return compiled.string, tuple(constants), constants, False
