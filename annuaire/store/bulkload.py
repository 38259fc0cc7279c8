"""Loading empty tables in bulk, in one write transaction (`Store.write(bulk=True)`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Table

from annuaire.store.dialect import is_postgresql


@contextmanager
def loading_empty(conn: Connection, tables: Sequence[Table], *, cache_kib: int) -> Iterator[bool]:
    """Prepare `conn` to fill the EMPTY `tables`; yields the `loading` flag of `bulk_inserts`.

    PostgreSQL: the tables truncated in this transaction, so that COPY writes the rows frozen
    (`loading`), and their indexes dropped, built once at the end (not after an error): one
    sort each instead of one insertion a row.
    SQLite: the rows go in through the indexes, its page cache raised to `cache_kib` KiB
    meanwhile so that their pages stay in memory; restored after.
    """
    if is_postgresql(conn):
        conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables))
        dropped = []
        for table in tables:
            for index in table.indexes:
                index.drop(conn)
                dropped.append(index)
        yield True
        for index in dropped:
            index.create(conn)
        return
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{cache_kib}")
    try:
        yield False
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={cache}")
