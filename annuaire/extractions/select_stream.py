"""Streaming the rows of one big SELECT, as plain tuples, inside the snapshot transaction.

An extraction reads millions of rows; SQLAlchemy's Row objects cost more
than the database itself at that volume. The statement is built with
SQLAlchemy Core (one query for both engines) and then run on the DBAPI
connection underneath the snapshot's Connection — the same transaction, so
the same snapshot — with a server-side cursor on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from sqlalchemy import Connection
from sqlalchemy.sql import Select

from annuaire.store.dialect import streaming_cursor

BATCH = 20_000
_names = itertools.count()


def batches(conn: Connection, stmt: Select, size: int = BATCH) -> Iterator[list[tuple]]:
    """Lists of row tuples, `size` at a time, in the statement's order."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = streaming_cursor(conn, f"extraction_{next(_names)}", size)
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()
