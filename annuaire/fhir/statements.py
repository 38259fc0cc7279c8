"""Running the search's SELECTs on the driver's cursor, each shape built and compiled once.

A search runs 2-6 small statements; through `Connection.execute` each paid
more in SQLAlchemy (building the statement around the lookup, the compile
cache, the execution context, Row objects) than SQLite spent answering it.
Here a statement is named by a tag (which statement around its parts) and the
structure of its parts (a lookup, the conditions: their SQLAlchemy cache keys,
values left out). The first time, `build()` makes it and it is compiled; it
is remembered as its SQL string and where each value comes from: a part's
bound value, a run-time value (`values`, bound with `bindparam(name)`), or a
constant. After that a statement costs the parts' cache keys and a dict
lookup; its rows come back from the driver as plain tuples.

A list of ids is written into the SQL as integers (`rid_in()` marks its
place): SQLite plans `rid IN (1,2,…)` as key probes, and thousands of bound
parameters would cost more than the query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, TextClause, text
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.visitors import replacement_traverse

from annuaire.store.select import begun, fetch, mark

RIDS = "<rids>"
MAX_SHAPES = 4096  # a bound on memory: the shapes of the search parameters are far fewer
PART, VALUE, CONSTANT = 0, 1, 2


@dataclass(frozen=True)
class _Shape:
    sql: str
    slots: tuple[tuple[int, Any, int], ...]  # per placeholder: (PART, part, bind) | (VALUE, name, 0) | (CONSTANT, value, 0)
    names: tuple[str, ...] | None  # named placeholders (PostgreSQL): their names, in slot order


_UNSEEN: Any = object()
_SHAPES: dict[tuple, _Shape | None] = {}  # None: a shape SQLAlchemy must run (values converted when executed)


def rid_in(column: str = "fhir_resource.rid") -> TextClause:
    """`<column> IN (<the ids given to run()>)`."""
    return text(f"{column} IN ({RIDS})")


def rows(conn: Connection, stmt: Select, rids: list[int] | None = None) -> list[tuple]:
    """All rows of a statement built by the caller (its own part)."""
    return run(conn, "", (stmt,), lambda: stmt, rids=rids)


def run(conn: Connection, tag: str, parts: Sequence[ClauseElement], build: Callable[[], Select],
        values: Mapping[str, Any] | None = None, rids: list[int] | None = None,
        memo: dict[int, Any] | None = None) -> list[tuple]:
    """All rows of `build()` (a statement around `parts`, chosen by `tag`) as tuples.

    `tag` must name everything `build()` varies on besides the parts' structure;
    `memo` keeps the parts' cache keys for the statements of one search."""
    keys = [_key(part, memo) for part in parts]
    shape = None
    if all(k is not None for k in keys):
        slot = (mark(conn), tag, *(k.key for k in keys))  # (the SQL of each engine: told by its placeholder)
        shape = _SHAPES.get(slot, _UNSEEN)
        if shape is _UNSEEN:
            shape = _compile(conn, slot, build(), keys)
    listed = None if rids is None else listing(rids)
    if shape is None:
        stmt = build()
        if listed is not None:
            stmt = _listing(stmt, listed)
        return [tuple(r) for r in conn.execute(stmt, dict(values or {}))]
    given = values or {}
    found = [keys[a].bindparams[b].effective_value if kind == PART else given[a] if kind == VALUE else a
             for kind, a, b in shape.slots]
    sql = shape.sql if listed is None else shape.sql.replace(RIDS, listed)
    params: Any = tuple(found) if shape.names is None else dict(zip(shape.names, found, strict=True))
    return sql_rows(conn, sql, params)


def listing(rids: list[int]) -> str:
    """The ids as written into the SQL of `rid_in()` (integers only)."""
    return ",".join(str(int(r)) for r in rids) or "NULL"


def sql_rows(conn: Connection, sql: str, params: Any = ()) -> list[tuple]:
    """All rows of a statement written in SQL, on the driver's cursor, in the search's transaction."""
    begun(conn)
    return fetch(conn, sql, params)


def _listing(stmt: Select, listed: str) -> Select:
    """The statement with the ids written in its `rid_in()` (for SQLAlchemy to run it)."""

    def swap(element: Any) -> Any:
        return text(element.text.replace(RIDS, listed)) if isinstance(element, TextClause) and RIDS in element.text else None

    return cast(Select, cast(Any, replacement_traverse)(stmt, {}, swap))


def _key(part: ClauseElement, memo: dict[int, Any] | None) -> Any:
    if memo is None:
        return part._generate_cache_key()
    key = memo.get(id(part))
    if key is None:
        key = memo[id(part)] = part._generate_cache_key()
    return key


def _compile(conn: Connection, slot: tuple, stmt: Select, keys: list[Any]) -> _Shape | None:
    """The SQL and value slots of a shape; None when SQLAlchemy must run it (values
    expanded into lists or converted when executed)."""
    compiled = stmt.compile(dialect=conn.dialect)
    where: dict[str, tuple[int, int]] = {}
    for j, key in enumerate(keys):
        for i, bind in enumerate(key.bindparams):
            if bind in compiled.bind_names:
                where.setdefault(compiled.bind_names[bind], (j, i))
    by_name: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        by_name.setdefault(name, bind)
    order = list(compiled.positiontup) if compiled.positiontup is not None else list(by_name)
    traced = all(bind in compiled.bind_names for key in keys for bind in key.bindparams)
    shape = None
    if traced and not (compiled._bind_processors or compiled.post_compile_params
                       or compiled.literal_execute_params or compiled.escaped_bind_names):
        constants = compiled.construct_params(_check=False)  # (run-time values are unknown here)
        slots: list[tuple[int, Any, int]] = []
        for name in order:
            if name in where:
                slots.append((PART, *where[name]))
            elif by_name[name].value is None and by_name[name].callable is None:
                slots.append((VALUE, name, 0))  # a bindparam(name) given at run time
            else:
                slots.append((CONSTANT, constants[name], 0))
        names = None if compiled.positiontup is not None else tuple(order)
        shape = _Shape(compiled.string, tuple(slots), names)
    if len(_SHAPES) >= MAX_SHAPES:
        _SHAPES.clear()
    _SHAPES[slot] = shape
    return shape
