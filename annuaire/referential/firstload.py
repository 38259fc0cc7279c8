"""A first national import on two cores.

A first import creates every record, and its time goes to building rows in
Python and inserting them. So this process builds the persons and structures
while a helper process builds the activities, savoir-faire and diplomas (5 M
of the 7.35 M records) into scratch tables keyed by national ids: a scratch
SQLite file beside an SQLite store, unlogged tables of a PostgreSQL store
(filled by COPY). The importer then copies each scratch table into the store
with one INSERT … SELECT that resolves the ids by joins (no Python per row).
Scratch tables and files are dropped once the import ends, however it ends.

The rows are built by the same functions as the importer's (`importer`):
the store ends exactly as an import in one process would leave it. An
ImportFileError in the helper is raised again by the importer, naming the
file and the line; the whole import is then rolled back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

from annuaire import formats
from annuaire.errors import DirectoryError
from annuaire.referential import helper, records
from annuaire.referential.groups import Groups
from annuaire.referential.helper import Helper
from annuaire.referential.prints import Packed, pack
from annuaire.referential.reader import Lines, Source
from annuaire.referential.rows import (
    CHILD_KINDS,
    CHILDREN,
    CodeCheck,
    Orphans,
    activity_key,
    child_lines,
    code_check,
)
from annuaire.store.digest import digest

BATCH = 20_000
# Each scratch table: the natural keys its rows carry (ids are resolved from them), and the
# record's values, in the store's column order.
NATURAL_KEYS = {"activity": ("id_nat", "tech_id"), "skill": ("id_nat",), "diploma": ("id_nat",)}
VALUES = {"activity": records.ACTIVITY, **CHILDREN}


@dataclass
class Child:
    """What the helper found in a savoir-faire or diploma file, besides its rows."""

    checks: CodeCheck  # the file's unknown codes
    orphans: Orphans  # lines of persons absent from Personne_activite
    prints: Packed | None  # its fingerprints, to store (None: not UTF-8, not kept)


@dataclass
class Built:
    """The helper's answer."""

    children: dict[str, Child] = field(default_factory=dict)
    error: Exception | None = None


def _columns(entity: str) -> tuple[str, ...]:
    """Columns of a scratch table, in order: the line's rank (file order), the record's key,
    its natural keys, its values, its digest."""
    return ("n", "key", *NATURAL_KEYS[entity], *VALUES[entity], "digest")


@dataclass(frozen=True)
class Scratch:
    """Where the helper writes: a SQLite file beside an SQLite store, or tables of a
    PostgreSQL store (its URL) named after `token`."""

    location: str  # the scratch file's path, or the PostgreSQL store's URL
    token: str
    postgresql: bool = False

    def table(self, entity: str) -> str:
        """The scratch table of `entity`, as the importer's connection names it."""
        return f'"import_{self.token}_{entity}"' if self.postgresql else f'scratch."{entity}"'

    def discard(self) -> None:
        """Drop what the helper wrote (after the import's transaction ended)."""
        if not self.postgresql:
            Path(self.location).unlink(missing_ok=True)
            return
        import psycopg

        try:
            with psycopg.connect(_libpq(self.location), autocommit=True) as conn:
                for entity in VALUES:
                    conn.execute(f'DROP TABLE IF EXISTS "import_{self.token}_{entity}"')
        except psycopg.Error:  # the server is out of reach: the import's own error says more
            pass


def _libpq(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class FirstLoad:
    """The helper process building a first import's activities and children, started at once."""

    def __init__(self, sources: dict[str, Source], scratch: Scratch) -> None:
        self.scratch = scratch
        self._helper = Helper("annuaire.referential.firstload", "serve", (sources, scratch))

    def built(self) -> Built:
        """Wait for the helper; raise what it raised (an ImportFileError names the file and line)."""
        try:
            built: Built = self._helper.answer()  # type: ignore[assignment]
        except Exception as exc:
            raise DirectoryError(f"the import's helper process failed ({exc!r}); nothing was imported") from exc
        if built.error is not None:
            raise built.error
        return built

    def discard(self) -> None:
        """Stop the helper and drop its scratch tables (once the import's transaction ended)."""
        self._helper.close()
        self.scratch.discard()


def serve() -> None:
    helper.serve(_serve)


def _serve(job: tuple[dict[str, Source], Scratch]) -> Built:
    """The helper's work: the scratch tables written, a `Built` (with the error, if any)."""
    sources, scratch = job
    built = Built()
    try:
        with _sink(scratch) as sink:
            _build(sources, sink, built)
    except Exception as exc:  # noqa: BLE001 - sent back, raised again by the importer
        built.error = exc
    return built


def _build(sources: dict[str, Source], sink: _Sink, built: Built) -> None:
    persons = _build_activities(sink, sources[formats.PERSONNE_ACTIVITE])
    for kind, entity in CHILD_KINDS.items():
        if kind not in sources:
            continue
        lines = Lines(sources[kind])
        groups = Groups(None)
        lines.read_header()
        index = lines.column_index()
        checks = code_check(index)
        orphans = Orphans()
        rows = ((n, lines.fields(text, n)) for n, text in lines.grouped(groups))
        with sink.writer(entity) as add:
            for id_nat, key, values in child_lines(rows, index, entity, persons, checks, orphans):
                add((key, id_nat, *values, digest(values)))
        prints = pack(lines.header_line, groups.prints) if lines.encoding == "utf-8" else None
        built.children[kind] = Child(checks, orphans, prints)


def _build_activities(sink: _Sink, source: Source) -> set[str]:
    """The activity rows of Personne_activite; returns the persons of the file."""
    lines = Lines(source)
    lines.read_header()
    index = lines.column_index()
    i_idnat, i_tech = index[records.ID_NAT], index[records.TECH_ID]
    pick = records.picker(index, records.ACTIVITY)
    keys: set[str] = set()
    persons: set[str] = set()
    with sink.writer("activity") as add:
        for _, fields in lines:
            id_nat, tech = fields[i_idnat], fields[i_tech]
            persons.add(id_nat)
            values = pick(fields)
            add((activity_key(id_nat, tech, keys), id_nat, tech, *values, digest(values)))
    return persons


class _Sink:
    """The scratch tables, as the helper writes them: `writer(entity)` gives a function adding
    one row (without its rank, added here) to a new table."""

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch
        self.db: sqlite3.Connection  # the scratch file (SQLite store), set by `_sink`
        self.pg: Any  # a psycopg connection to the store (PostgreSQL), set by `_sink`

    @contextmanager
    def writer(self, entity: str) -> Iterator[Callable[[tuple], None]]:
        columns = _columns(entity)
        rank = count(1)
        if self.scratch.postgresql:
            name = self.scratch.table(entity)
            types = ", ".join(f'"{c}" {"bigint" if c in ("n", "digest") else "text"}' for c in columns)
            self.pg.execute(f"CREATE UNLOGGED TABLE {name} ({types})")
            with self.pg.cursor() as cur, cur.copy(f"COPY {name} FROM STDIN") as copy:
                write_row = copy.write_row
                yield lambda row: write_row((next(rank), *row))
            self.pg.execute(f"ANALYZE {name}")  # (the importer's joins are planned with statistics)
            return
        types = ", ".join(f'"{c}"' + (" INTEGER PRIMARY KEY" if c == "n" else "") for c in columns)
        self.db.execute(f'CREATE TABLE "{entity}" ({types})')
        sql = f'INSERT INTO "{entity}" VALUES ({", ".join("?" * len(columns))})'
        rows: list[tuple] = []

        def add(row: tuple) -> None:
            rows.append((next(rank), *row))
            if len(rows) >= BATCH:
                self.db.executemany(sql, rows)
                rows.clear()

        yield add
        self.db.executemany(sql, rows)


@contextmanager
def _sink(scratch: Scratch) -> Iterator[_Sink]:
    sink = _Sink(scratch)
    if scratch.postgresql:
        import psycopg

        with psycopg.connect(_libpq(scratch.location), autocommit=True) as sink.pg:
            yield sink
        return
    sink.db = sqlite3.connect(scratch.location, isolation_level=None)
    try:
        sink.db.execute("PRAGMA journal_mode=OFF")  # a scratch file: thrown away if anything fails
        sink.db.execute("PRAGMA synchronous=OFF")
        sink.db.execute("BEGIN")
        yield sink
        sink.db.execute("COMMIT")
    finally:
        sink.db.close()
