"""Substring ("contains") search through trigram indexes, on both engines.

A b-tree answers prefixes; `name:contains=ene` needs a trigram index:
- SQLite: one FTS5 virtual table per column group with `tokenize='trigram'`,
  external content (the indexed table itself, no copy of the text), kept in
  sync by triggers so that every writer is covered without knowing about it;
- PostgreSQL: `pg_trgm` GIN indexes on the key columns, used by `LIKE '%x%'`.
Mailbox addresses are indexed by their local part only (see `_address_ids`).

Fragments are normalised with `search_key` (the indexed columns hold keys) or
lowercased (mailbox addresses). A trigram index needs at least three
characters: shorter fragments raise InvalidInput rather than scanning.

Usage: `contains_ids(store, "person.last_name_key", "ene")` is a SELECT of the
matching ids (person.id), to put in `id IN (...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    column,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
    union,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import Label

from annuaire.errors import InvalidInput
from annuaire.store import bound, dialect
from annuaire.store.keys import search_key
from annuaire.store.prefix import starts_with

MIN_FRAGMENT = 3
BATCHED = 100  # inserts from which the trigram index is filled in one statement
# FTS5's memory for pending terms: its default, and while a table is filled at once (a
# national table's terms take ~120 MB).
DEFAULT_HASHSIZE = 1 << 20
BULK_HASHSIZE = 256 << 20
TRIGGERS = ("ai", "ad", "au")  # SQLite: the events that keep an FTS5 table in step with its table


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
    local_part: bool = False  # the index holds the local part of the addresses in `column`

    @property
    def pg_index(self) -> str:
        return f"ix_{self.table}_{'local_part' if self.local_part else self.column}_trgm"

    @property
    def pg_indexed(self) -> str:
        """PostgreSQL: the expression its GIN index holds."""
        return f"split_part({self.column}, '@', 1)" if self.local_part else self.column

    def values(self, row: str = "") -> list[str]:
        """SQLite: the values its FTS5 table holds, from the columns of `row` ("new.", "old." or the table's)."""
        if not self.local_part:
            return [row + c for c in self.fts_columns]
        address = row + self.column
        return [f"substr({address}, 1, instr({address}, '@') - 1)"]

    @property
    def sources(self) -> tuple[str, ...]:
        """The table's columns the indexed values come from."""
        return (self.column,) if self.local_part else self.fts_columns

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
        Trigram("mailbox", "address", "mailbox_local_tri", ("local_part",), "lower", local_part=True),
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


def contains_ids(store_or_dialect: object, target: str, fragment: str) -> Select | CompoundSelect:
    """SELECT of the ids of `table` whose `column` contains `fragment`.

    On SQLite the ids of names come out in ascending order (FTS5 rowid order),
    so a caller may page with `id > last ORDER BY id LIMIT n` without sorting
    (mailbox addresses: no order promised).
    """
    spec = _spec(target)
    value = normalise_fragment(target, fragment)
    name = dialect.name(store_or_dialect)
    if spec.local_part:
        return _address_ids(spec, value, name)
    if name == "sqlite":
        return _matching(spec, value)
    base = table(spec.table, column("id"), *(column(c) for c in spec.columns))
    return select(base.c.id).where(or_(*(base.c[c].like(_inside(value), escape="\\") for c in spec.columns)))


def fts_tables(bind: object) -> bool:
    """Whether the trigram indexes are FTS5 tables, read with MATCH for the rowids (SQLite),
    rather than GIN indexes answering LIKE '%x%' conditions (PostgreSQL, `pg_trgm`)."""
    return not dialect.is_postgresql(bind)


def fts_rowids(target: str, match: str) -> Select:
    """SQLite: SELECT of the rowids (ids of the indexed table) that the FTS5 table of `target`
    finds for `match`, an FTS5 query (`fts_tables`)."""
    fts = _spec(target).fts
    return select(literal_column("rowid")).select_from(text(fts)).where(
        text(f"{fts} MATCH :match").bindparams(match=match)
    )


def ids_ascending(bind: object) -> bool:
    """Whether `contains_ids` gives the ids of names in ascending order: FTS5 (SQLite)
    returns rowids in order; a GIN bitmap scan (PostgreSQL) promises no order."""
    return not dialect.is_postgresql(bind)


def fts_phrase(target: str, value: str, columns: tuple[str, ...] | None = None) -> str:
    """SQLite: the FTS5 query of `target`'s trigram table for `value` as one phrase, inside
    `columns` (default: the columns `target` searches). No column filter when they are all of the
    table's: it cost FTS5 ~12 % of the read."""
    spec = _spec(target)
    quoted = '"' + value.replace('"', '""') + '"'
    searched = columns or (spec.fts_columns if spec.local_part else spec.columns)
    return quoted if set(searched) == set(spec.fts_columns) else f"{{{' '.join(searched)}}} : {quoted}"


def _matching(spec: Trigram, value: str) -> Select:
    """SQLite: the rowids of the FTS5 table having `value` in the searched columns."""
    fts = literal_column(spec.fts, String())
    match = fts_phrase(f"{spec.table}.{spec.column}", value)
    return select(_ROWID_AS_ID).select_from(table(spec.fts)).where(
        bound.compare(fts, operators.match_op, match)  # `<fts> MATCH ?`
    )


_ROWID_AS_ID: Label[Any] = literal_column("rowid").label("id")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _inside(value: str) -> str:
    return "%" + _escape(value) + "%"


def _address_ids(spec: Trigram, value: str, dialect: str) -> Select | CompoundSelect:
    """Ids of the mailboxes whose address contains `value`.

    The trigram index covers local parts only: a domain's trigrams are in every
    address of the domain, more than half the index's entries and of its cost
    on a publication (PostgreSQL 0.3 s, SQLite 0.18 s for a first publication
    of 67k boxes). A domain is matched through the few thousand names of the
    `domain` table (every writer of mailboxes registers its domain there). An
    address has one '@': a fragment holding one is the end of a local part
    followed by the beginning of a domain.
    """
    box = table("mailbox", column("id"), column("address"), column("domain"))

    def in_local_part(pattern: str, fragment: str) -> ColumnElement[bool]:
        if dialect == "sqlite":
            if len(fragment) < MIN_FRAGMENT:  # too short for trigrams: the LIKE alone decides
                return true()
            return box.c.id.in_(_matching(spec, fragment))
        return literal_column(spec.pg_indexed).like(pattern, escape="\\")

    before, at, after = value.partition("@")
    if not at:
        names = table("domain", column("name"))
        return union(
            select(box.c.id).where(in_local_part(_inside(value), value)),
            select(box.c.id).where(box.c.domain.in_(
                select(names.c.name).where(names.c.name.like(_inside(value), escape="\\")))),
        )
    exact = box.c.address.like(_inside(value), escape="\\")
    if after:  # a range of the domain index
        return select(box.c.id).where(starts_with(box.c.domain, after), exact)
    return select(box.c.id).where(in_local_part("%" + _escape(before), before), exact)


def _spec(target: str) -> Trigram:
    try:
        return INDEXED[target]
    except KeyError:
        raise InvalidInput(f"no trigram index on {target!r}; indexed: {', '.join(sorted(INDEXED))}") from None


# --- DDL of bulk loads. The migrations hold frozen copies: a change here needs a new
# revision (tests/test_migrations.py compares a migrated store with this code).


def _groups() -> dict[str, Trigram]:
    out: dict[str, Trigram] = {}
    for spec in INDEXED.values():
        out.setdefault(spec.fts, spec)
    return out


def _trigger_sql(spec: Trigram, event: str) -> str:
    """The SQLite trigger keeping `spec.fts` in step with its table on `event` (ai, ad, au)."""
    fts, cols = spec.fts, ", ".join(spec.fts_columns)
    new = ", ".join(spec.values("new."))
    old = ", ".join(spec.values("old."))
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    if event == "ai":
        return f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {spec.table} BEGIN {insert} END"
    if event == "ad":
        return f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {spec.table} BEGIN {delete} END"
    # Updates rewrite every column: only a real change of an indexed value touches the index.
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in spec.sources)
    return (f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {', '.join(spec.sources)} ON {spec.table} WHEN {changed} "
            f"BEGIN {delete} {insert} END")


def create_index(conn: Connection, spec: Trigram) -> None:
    """The trigram index of `spec`, filled (on SQLite: its FTS5 table, without the triggers)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {spec.pg_index} ON {spec.table} USING gin (({spec.pg_indexed}) gin_trgm_ops)"
        )
        return
    fts, cols = spec.fts, ", ".join(spec.fts_columns)
    if spec.local_part:  # contentless: its values are not columns of the table
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='', tokenize='trigram')")
        _fill(conn, spec, 0)
        return
    conn.exec_driver_sql(
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{spec.table}', content_rowid='id', tokenize='trigram')"
    )
    conn.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


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
    last = conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"').scalar_one()
    for spec in specs:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {spec.fts}_ai")
    try:
        yield
        for spec in specs:
            _fill(conn, spec, last)
    finally:
        for spec in specs:
            conn.exec_driver_sql(_trigger_sql(spec, "ai"))


def suspend(conn: Connection, table: str) -> list[Trigram]:
    """Stop maintaining the trigram indexes of `table` while an EMPTY table is loaded;
    `resume` builds them once the rows are in. Inside the caller's transaction.

    Built in bulk, an index costs a fraction of one maintained batch by batch:
    PostgreSQL's GIN indexes through COPY (the structures' COPY batches of a
    national import: 0.34 s each); SQLite's FTS5 tables, filled in one statement
    (the persons of a national import: 2.6 s, not 6.1 s in 98 batches). The
    rows inserted meanwhile must skip `batched_inserts` (`bulk_insert(…, loading=True)`).
    SQLite's triggers are all dropped: a table with triggers is never the target
    of its transfer optimisation (`firstload.Scratch.move_into`).
    """
    if conn.dialect.name == "sqlite":
        specs = [spec for spec in _groups().values() if spec.table == table]
        for spec in specs:
            for event in TRIGGERS:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {spec.fts}_{event}")
        return specs
    specs = [spec for spec in INDEXED.values() if spec.table == table and not spec.searched]
    for spec in specs:
        conn.exec_driver_sql(f"DROP INDEX {spec.pg_index}")
    return specs


def resume(conn: Connection, specs: list[Trigram]) -> None:
    """Build again the indexes `suspend` stopped (SQLite: fill them with every row)."""
    for spec in specs:
        if conn.dialect.name == "postgresql":
            create_index(conn, spec)
            continue
        # FTS5 writes its pending terms to a new segment whenever they pass `hashsize`
        # (1 MB by default), then merges the segments: one segment for a table at once.
        fts = spec.fts
        conn.exec_driver_sql(f"INSERT INTO {fts}({fts}, rank) VALUES ('hashsize', {BULK_HASHSIZE})")
        _fill(conn, spec, 0)
        conn.exec_driver_sql(f"INSERT INTO {fts}({fts}, rank) VALUES ('hashsize', {DEFAULT_HASHSIZE})")
        for event in TRIGGERS:
            conn.exec_driver_sql(_trigger_sql(spec, event))


def _fill(conn: Connection, spec: Trigram, after: int) -> None:
    """SQLite: index the rows of `spec.table` whose id is above `after`, in one statement
    (in rowid order: out of order, as a covering index would give them, FTS5 is 5x slower)."""
    conn.exec_driver_sql(
        f"INSERT INTO {spec.fts}(rowid, {', '.join(spec.fts_columns)}) "
        f'SELECT id, {", ".join(spec.values())} FROM "{spec.table}" WHERE id > ? ORDER BY id', (after,)
    )
