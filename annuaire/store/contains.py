"""Substring ("contains") search through trigram indexes, on both engines.

A b-tree answers prefixes; `name:contains=ene` needs a trigram index:
- SQLite: one FTS5 virtual table per column group with `tokenize='trigram'`,
  external content (the indexed table itself, no copy of the text), kept in
  sync by triggers so that every writer is covered without knowing about it;
- PostgreSQL: `pg_trgm` GIN indexes on the key columns, used by `LIKE '%x%'`.

Fragments are normalised with `search_key` (the indexed columns hold keys) or
lowercased (mailbox addresses). A trigram index needs at least three
characters: shorter fragments raise InvalidInput rather than scanning.

Usage: `contains_ids(store, "person.last_name_key", "ene")` is a SELECT of the
matching ids (person.id), to put in `id IN (...)`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy import Select, column, literal_column, or_, select, table, text
from sqlalchemy.engine import Connection

from annuaire.errors import InvalidInput
from annuaire.store.keys import search_key

MIN_FRAGMENT = 3
BATCHED = 100  # inserts from which the trigram index is filled in one statement


@dataclass(frozen=True)
class Trigram:
    """One searchable column (or group of columns of one table): `fts` is the
    SQLite FTS5 table covering it, `searched` the columns a fragment may be in."""

    table: str
    column: str
    fts: str
    fts_columns: tuple[str, ...]
    normalise: str  # "key" (search_key) or "lower"
    searched: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.searched or (self.column,)


INDEXED: dict[str, Trigram] = {
    t.table + "." + t.column: t
    for t in (
        Trigram("person", "last_name_key", "person_name_tri", ("last_name_key", "first_name_key"), "key"),
        Trigram("person", "first_name_key", "person_name_tri", ("last_name_key", "first_name_key"), "key"),
        # either name: one index query for FHIR `name:contains`
        Trigram("person", "name", "person_name_tri", ("last_name_key", "first_name_key"), "key",
                ("last_name_key", "first_name_key")),
        Trigram("structure", "name_key", "structure_name_tri", ("name_key", "city_key"), "key"),
        Trigram("structure", "city_key", "structure_name_tri", ("name_key", "city_key"), "key"),
        Trigram("mailbox", "address", "mailbox_address_tri", ("address",), "lower"),
    )
}


def normalise_fragment(target: str, fragment: str) -> str:
    """The fragment as stored in the indexed column; InvalidInput when too short."""
    spec = _spec(target)
    value = search_key(fragment) if spec.normalise == "key" else fragment.strip().lower()
    if len(value) < MIN_FRAGMENT:
        raise InvalidInput(
            f"a 'contains' search needs at least {MIN_FRAGMENT} letters or digits, got {fragment!r}"
        )
    return value


def contains_ids(store_or_dialect: object, target: str, fragment: str) -> Select:
    """SELECT of the ids of `table` whose `column` contains `fragment`.

    On SQLite the ids come out in ascending order (FTS5 rowid order), so a
    caller may page with `id > last ORDER BY id LIMIT n` without sorting.
    """
    spec = _spec(target)
    value = normalise_fragment(target, fragment)
    dialect = getattr(store_or_dialect, "engine", None)
    name = dialect.dialect.name if dialect is not None else str(store_or_dialect)
    if name == "sqlite":
        quoted = '"' + value.replace('"', '""') + '"'
        fts = table(spec.fts, column("rowid"))
        return select(literal_column("rowid").label("id")).select_from(fts).where(
            text(f"{spec.fts} MATCH :q").bindparams(q=f"{{{' '.join(spec.columns)}}} : {quoted}")
        )
    like = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    base = table(spec.table, column("id"), *(column(c) for c in spec.columns))
    return select(base.c.id).where(or_(*(base.c[c].like(like, escape="\\") for c in spec.columns)))


def _spec(target: str) -> Trigram:
    try:
        return INDEXED[target]
    except KeyError:
        raise InvalidInput(f"no trigram index on {target!r}; indexed: {', '.join(sorted(INDEXED))}") from None


# --- DDL, run by the FHIR migration (0003) -----------------------------------


def _groups() -> dict[str, Trigram]:
    out: dict[str, Trigram] = {}
    for spec in INDEXED.values():
        out.setdefault(spec.fts, spec)
    return out


def _trigger_sql(spec: Trigram, event: str) -> str:
    """The SQLite trigger keeping `spec.fts` in step with its table on `event` (ai, ad, au)."""
    fts, cols = spec.fts, ", ".join(spec.fts_columns)
    new = ", ".join(f"new.{c}" for c in spec.fts_columns)
    old = ", ".join(f"old.{c}" for c in spec.fts_columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    if event == "ai":
        return f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {spec.table} BEGIN {insert} END"
    if event == "ad":
        return f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {spec.table} BEGIN {delete} END"
    # Updates rewrite every column: only a real change of an indexed value touches the index.
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in spec.fts_columns)
    return f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols} ON {spec.table} WHEN {changed} BEGIN {delete} {insert} END"


def create_triggers(conn: Connection, events: tuple[str, ...] = ("ai", "ad", "au")) -> None:
    """(Re)create the SQLite sync triggers of every trigram index."""
    for fts, spec in _groups().items():
        for event in events:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {fts}_{event}")
            conn.exec_driver_sql(_trigger_sql(spec, event))


def create_indexes(conn: Connection) -> None:
    """Create the trigram indexes (and their sync triggers on SQLite), filled."""
    if conn.dialect.name == "sqlite":
        for fts, spec in _groups().items():
            conn.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {fts} USING fts5({', '.join(spec.fts_columns)}, content='{spec.table}', "
                f"content_rowid='id', tokenize='trigram')"
            )
            conn.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
        create_triggers(conn)
        return
    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for spec in INDEXED.values():
        if spec.searched:
            continue
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_{spec.table}_{spec.column}_trgm ON {spec.table} "
            f"USING gin ({spec.column} gin_trgm_ops)"
        )


@contextmanager
def batched_inserts(conn: Connection, table: str, rows: int) -> Iterator[None]:
    """`rows` inserts into `table` inside this block reach its trigram index in one statement.

    On SQLite the per-row trigger costs ~50 µs an insert, and far more now and
    then: FTS5 writes its pending terms at every statement savepoint, so each
    triggered row becomes a segment of its own, and the merges of these segments
    into the large ones cost 20-60 ms each (133 new mailboxes of a 67k-box
    domain: 50-70 ms of inserts and as much again at commit). One INSERT …
    SELECT of the new rows costs ~5 µs a row and writes one segment. The
    trigger is dropped for the block and recreated after it, inside the
    caller's transaction, so other connections never see it missing. That is
    a schema change, which every connection pays once (~0.5 ms: schema read and
    statements prepared again): worth it from BATCHED rows on. Rows inserted
    here must get ids above the table's current maximum (rowids and our
    sequential ids do).
    """
    sqlite = conn.dialect.name == "sqlite" and rows >= BATCHED
    specs = [s for s in _groups().values() if s.table == table] if sqlite else []
    if not specs:
        yield
        return
    last = conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"').scalar()
    for spec in specs:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {spec.fts}_ai")
    try:
        yield
        for spec in specs:
            cols = ", ".join(spec.fts_columns)
            conn.exec_driver_sql(
                f'INSERT INTO {spec.fts}(rowid, {cols}) SELECT id, {cols} FROM "{table}" WHERE id > ?', (last,)
            )
    finally:
        for spec in specs:
            conn.exec_driver_sql(_trigger_sql(spec, "ai"))


def drop_indexes(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for fts, spec in _groups().items():
            for suffix in ("ai", "ad", "au"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {fts}")
        return
    for spec in INDEXED.values():
        if spec.searched:
            continue
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS ix_{spec.table}_{spec.column}_trgm")
