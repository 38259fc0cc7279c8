"""A first national import on two cores.

A first import creates every record, and its time goes to building rows in
Python and writing them. So this process builds the persons while a helper
process builds the structures, activities, savoir-faire and diplomas (5.4 M
of the 7.35 M records) into scratch tables of the store's own definition and
indexes: one SQLite file per table beside an SQLite store, tables of a
PostgreSQL store (filled by COPY). The importer takes each table in as soon
as it is written (`Scratch.move_into`: SQLite copies the rows and index
entries as they are stored, PostgreSQL swaps the tables). Scratch tables and
files are dropped once the import ends, however it ends.

The helper numbers the persons and structures as the importer does when it
creates them into empty tables (1, 2, … in order of first appearance in
Personne_activite), so its rows carry the ids of their person and structure,
and its structures are those the importer would have created.
Its rows are built by the same functions as the importer's (`rows`): the
store ends exactly as an import in one process would leave it. An
ImportFileError in the helper is raised again by the importer, naming the
file and the line; the whole import is then rolled back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Table

from annuaire import formats
from annuaire.errors import Conflict, DirectoryError
from annuaire.gcpause import gc_paused
from annuaire.nationalfiles.lines import Lines
from annuaire.nationalfiles.sources import Source
from annuaire.referential import helper_process, records
from annuaire.referential.groups import Groups
from annuaire.referential.helper_process import Helper
from annuaire.referential.line_records import (
    CHILD_KINDS,
    CHILDREN,
    CodeCheck,
    Orphans,
    activity_key,
    child_lines,
    code_check,
)
from annuaire.referential.prints import Packed, kept
from annuaire.referential.selected import selected_lines
from annuaire.store import contains
from annuaire.store.diff import ACTIVE, BATCH, copy_rows
from annuaire.store.digest import digest
from annuaire.store.engine import BULK_MAINTENANCE_MEM

# entity -> the store columns of the helper's rows, in their order: id, key, then values
# (the constant columns of a creation, CREATED, are not in them).
COLUMNS = {
    "structure": ("id", "tech_id", *records.STRUCTURE, *records.STRUCTURE_KEYS, "digest"),
    "activity": ("id", "key", "person_id", "structure_id", *records.ACTIVITY, "digest"),
    **{entity: ("id", "key", "person_id", *values, "digest") for entity, values in CHILDREN.items()},
}
CREATED = ("active", "version", "last_updated")  # the record columns a creation sets to constants


@dataclass
class Child:
    """What the helper found in a savoir-faire or diploma file, besides its rows."""

    checks: CodeCheck  # the file's unknown codes
    orphans: Orphans  # lines of persons absent from Personne_activite
    prints: Packed | None  # its fingerprints, to store (None: not UTF-8, not kept)


@dataclass
class Built:
    """The helper's last answer (the ones before name the tables written)."""

    children: dict[str, Child] = field(default_factory=dict)
    error: Exception | None = None


@dataclass(frozen=True)
class Scratch:
    """Where the helper writes: SQLite files beside an SQLite store (one per table, each
    readable once written while the helper writes the next), or tables of a PostgreSQL
    store (its URL); named after `token`."""

    location: str  # the scratch files' path without their suffix, or the PostgreSQL store's URL
    token: str
    now: str  # the records' last_updated: the import's time
    # The store's definitions of each table built: SQLite, its CREATE TABLE and CREATE INDEX
    # statements; PostgreSQL, its indexes' (name, CREATE INDEX statement, constraint or None).
    schema: dict[str, list] = field(default_factory=dict)
    postgresql: bool = False

    def table(self, entity: str) -> str:
        """The scratch table of `entity`, as the importer's connection names it (SQLite: once
        its file is attached as `scratch_<entity>`)."""
        return f'"import_{self.token}_{entity}"' if self.postgresql else f'scratch_{entity}."{entity}"'

    def path(self, entity: str) -> str:
        """SQLite: the scratch file of `entity`."""
        return f"{self.location}-{entity}.sqlite"

    def index(self, entity: str, n: int) -> str:
        """PostgreSQL: the name of the store's index n of `entity` on its scratch table
        (short: the store's names and the token may pass the 63 characters of a name)."""
        return f"import_{self.token}_{entity}_{n}"

    def move_into(self, conn: Connection, table: Table) -> int:
        """Make the EMPTY `table` hold the rows of its scratch table; returns their number.

        SQLite attaches the scratch file and copies with `INSERT INTO t SELECT * FROM s`:
        its transfer optimisation, the stored rows and index entries copied as they are
        (the scratch file has the store's definitions): no row decoded, no index sorted;
        the table's trigram index is filled from the rows once they are in.
        PostgreSQL swaps the tables inside the import's transaction: the scratch
        table, written and indexed by the helper (its own server process, in
        parallel), takes the name of the store's, its indexes and constraints too.
        """
        name = table.name
        if conn.exec_driver_sql(f'SELECT 1 FROM "{name}" LIMIT 1').first() is not None:
            raise Conflict(f"the {name} records were written by another import meanwhile; run this one again")
        if not self.postgresql:
            conn.exec_driver_sql(f"ATTACH DATABASE ? AS scratch_{name}", (self.path(name),))
            trigrams = contains.suspend(conn, name)
            count = conn.exec_driver_sql(f'INSERT INTO "{name}" SELECT * FROM {self.table(name)}').rowcount
            contains.resume(conn, trigrams)
            return count
        conn.exec_driver_sql(f'DROP TABLE "{name}"')
        conn.exec_driver_sql(f'ALTER TABLE {self.table(name)} RENAME TO "{name}"')
        for n, (index, _, constraint) in enumerate(self.schema[name]):
            built = self.index(name, n)
            if constraint is None:
                conn.exec_driver_sql(f'ALTER INDEX "{built}" RENAME TO "{index}"')
            else:  # (the index takes the constraint's name)
                conn.exec_driver_sql(
                    f'ALTER TABLE "{name}" ADD CONSTRAINT "{index}" {constraint} USING INDEX "{built}"')
        return conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar_one()

    def discard(self) -> None:
        """Drop what the helper wrote (after the import's transaction ended)."""
        if not self.postgresql:
            for entity in COLUMNS:
                Path(self.path(entity)).unlink(missing_ok=True)
            return
        import psycopg

        try:
            with psycopg.connect(_libpq(self.location), autocommit=True) as conn:
                for entity in COLUMNS:
                    conn.execute(f"DROP TABLE IF EXISTS {self.table(entity)}")
        except psycopg.Error:  # the server is out of reach: the import's own error says more
            pass


# --- scratch left by a killed import -----------------------------------------------------

APPLICATION = "annuaire-import-"  # PostgreSQL application_name of the sessions of an import: + its token
_SQLITE_SCRATCH = re.compile(r"^\.(?P<store>.+)\.import-(?P<pid>\d+)_[0-9a-f]+-[a-z]+\.sqlite$")
_PG_SCRATCH = re.compile(r"^import_(?P<token>\d+_[0-9a-f]+)_")


def remove_stale(store_url: str, database: str | None) -> list[str]:
    """Remove the scratch files or tables of imports that no longer run; what was removed.

    A killed import (or its killed helper) cannot drop its scratch data. SQLite: a file
    beside the store whose importer process is gone. PostgreSQL: a table whose token no
    session of the importer or its helper carries any more (their application_name):
    the check holds whichever machine ran the import.
    """
    if database is not None:  # SQLite
        store = Path(database)
        removed = []
        for path in store.parent.glob(f".{store.name}.import-*.sqlite"):
            match = _SQLITE_SCRATCH.match(path.name)
            if match and match["store"] == store.name and not _alive(int(match["pid"])):
                size = path.stat().st_size
                path.unlink(missing_ok=True)
                removed.append(f"{path.name} ({size / 2**20:,.0f} MiB)")
        return removed
    import psycopg

    with psycopg.connect(_libpq(store_url), autocommit=True) as conn:
        running = {row[0][len(APPLICATION):] for row in conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s", (APPLICATION + "%",))}
        stale = [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'import\\_%%'")
            if (match := _PG_SCRATCH.match(name)) and match["token"] not in running]
        for name in stale:
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sqlite_schema(conn: Connection) -> dict[str, list[str]]:
    """The definitions a scratch SQLite file needs: the store's own, so that copying a
    scratch table into the store is a copy of stored rows and index entries (not its
    triggers: they keep trigram indexes, which the store fills once the rows are in)."""
    return {
        entity: [sql for (sql,) in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('table', 'index') AND sql IS NOT NULL "
            "ORDER BY type = 'index'", (entity,))]
        for entity in COLUMNS
    }


def postgresql_schema(conn: Connection) -> dict[str, list[tuple[str, str, str | None]]]:
    """The indexes a scratch table of a PostgreSQL store gets: the store's own (name,
    definition, the constraint it backs: PRIMARY KEY, UNIQUE or None)."""
    return {
        entity: [tuple(row) for row in conn.exec_driver_sql(
            "SELECT i.relname, pg_get_indexdef(i.oid), "
            "CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' END "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.conrelid = x.indrelid "
            "WHERE x.indrelid = to_regclass(%s) ORDER BY i.relname", (f'"{entity}"',))]
        for entity in COLUMNS
    }


def _libpq(url: str, token: str | None = None) -> str:
    """The libpq URL of a store; with `token`, its sessions named after the import (`remove_stale`)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if token is not None:
        parsed = parsed.update_query_dict({"application_name": APPLICATION + token})
    return parsed.render_as_string(hide_password=False)


class FirstLoad:
    """The helper process building a first import's structures, activities and children,
    started at once."""

    def __init__(self, sources: dict[str, Source], scratch: Scratch) -> None:
        self.scratch = scratch
        self.built = Built()
        self._helper = Helper("annuaire.referential.firstload", "serve", (sources, scratch))

    def tables(self) -> Iterator[str]:
        """The entities of the scratch tables, each as soon as the helper has written it;
        then `built` holds the rest of its answer."""
        n = 0
        while isinstance(answer := self._answer(n), str):
            yield answer
            n += 1
        self.built = answer

    def _answer(self, n: int) -> str | Built:
        """Answer `n` of the helper; raise what it raised (an ImportFileError names the file and line)."""
        try:
            answer: str | Built = self._helper.answer(n)  # type: ignore[assignment]  # what _serve yields
        except Exception as exc:
            raise DirectoryError(f"the import's helper process failed ({exc!r}); nothing was imported") from exc
        if isinstance(answer, Built) and answer.error is not None:
            raise answer.error
        return answer

    def discard(self) -> None:
        """Stop the helper and drop the scratch tables (once the import's transaction ended)."""
        self._helper.close()
        self.scratch.discard()


def serve() -> None:
    helper_process.serve(_serve)


def _serve(job: tuple[dict[str, Source], Scratch]) -> Iterator[str | Built]:
    """The helper's work: the entity of each scratch table once written (a few bytes: the
    pipe takes them whenever the importer reads), then a `Built`, with the error if any.

    The largest child file first: the importer copies each table while the next is built,
    and only the copy of the last one waits for the helper."""
    sources, scratch = job
    built = Built()
    # (millions of long-lived keys and no cycles: the collector's passes would find nothing)
    with gc_paused():
        try:
            persons = _build_activities(scratch, sources[formats.PERSONNE_ACTIVITE])
            yield "structure"  # (journaled before the activities, as an import in one process does)
            yield "activity"
            for kind in sorted((k for k in CHILD_KINDS if k in sources), key=lambda k: -sources[k].size):
                built.children[kind] = _build_child(sources[kind], CHILD_KINDS[kind], scratch, persons)
                yield CHILD_KINDS[kind]
        except Exception as exc:  # noqa: BLE001 - sent back, raised again by the importer
            built.error = exc
    yield built


def _build_child(source: Source, entity: str, scratch: Scratch, persons: dict[str, int]) -> Child:
    """The rows of a savoir-faire or diploma file."""
    lines = Lines(source)
    groups = Groups(None)
    lines.read_header()
    index = lines.column_index()
    checks = code_check(index)
    orphans = Orphans()
    lines_read = ((n, lines.fields(text, n)) for n, text in selected_lines(lines, groups))
    with _table(scratch, entity) as write:
        write(
            (id_, key, persons[id_nat], *values, digest(values))
            for id_, (id_nat, key, values) in enumerate(
                child_lines(lines_read, index, entity, persons, checks, orphans), 1)
        )
    return Child(checks, orphans, kept(lines, groups.prints))


def _build_activities(scratch: Scratch, source: Source) -> dict[str, int]:
    """The structure and activity rows of Personne_activite (the importer reads the file
    too: the persons, and the file's unknown codes); returns the ids of the file's persons."""
    lines = Lines(source)
    lines.read_header()
    index = lines.column_index()
    i_idnat, i_tech = index[records.ID_NAT], index[records.TECH_ID]
    pick = records.picker(index, records.ACTIVITY)
    pick_structure = records.picker(index, records.STRUCTURE)
    structure_keys = records.structure_keys
    keys: set[str] = set()
    persons: dict[str, int] = {}
    structures: dict[str, int | None] = {"": None}  # (no structure: no number)
    new: list[tuple] = []  # structure rows to write

    with _table(scratch, "structure") as write_structures, _table(scratch, "activity") as write_activities:

        def rows() -> Iterator[tuple]:
            for id_, (_line_no, fields) in enumerate(lines, 1):
                id_nat, tech = fields[i_idnat], fields[i_tech]
                person_id = persons.setdefault(id_nat, len(persons) + 1)
                structure_id = structures.get(tech, 0)
                if structure_id == 0:  # (a structure's first line)
                    structure_id = structures[tech] = len(structures)
                    values = pick_structure(fields)
                    new.append((structure_id, tech, *values, *structure_keys(values), digest(values)))
                    if len(new) == BATCH:
                        write_structures(new)
                        new.clear()
                values = pick(fields)
                yield (id_, activity_key(id_nat, tech, keys), person_id, structure_id, *values, digest(values))

        write_activities(rows())
        write_structures(new)
    return persons


def _on_scratch(definition: str, index: str, table: str) -> str:
    """A store's CREATE INDEX statement (`pg_get_indexdef`), for a scratch table."""
    match = re.fullmatch(r"CREATE (UNIQUE )?INDEX \S+ ON \S+ (USING .*)", definition)
    if match is None:
        raise DirectoryError(f"unexpected index definition: {definition}")
    return f'CREATE {match[1] or ""}INDEX "{index}" ON {table} {match[2]}'


@contextmanager
def _table(scratch: Scratch, entity: str) -> Iterator[Callable[[Iterable[tuple]], object]]:
    """A function writing rows, records created now (`COLUMNS[entity]`: the constant columns
    of a creation are not in them), into the new scratch table of `entity`, as often as
    needed; the table's indexes are built when the block ends."""
    if scratch.postgresql:
        import psycopg
        from psycopg import sql

        name = scratch.table(entity)
        with psycopg.connect(_libpq(scratch.location, scratch.token), autocommit=True) as conn, conn.transaction():
            conn.execute(f'CREATE TABLE {name} (LIKE "{entity}" INCLUDING ALL EXCLUDING INDEXES)')
            # While it is filled, the constant columns of a creation are the table's defaults:
            # COPY sends three values fewer a row (0.5-1 µs of the helper's Python each).
            conn.execute(sql.SQL(f"ALTER TABLE {name} ") + sql.SQL(", ").join(
                sql.SQL("ALTER COLUMN {} SET DEFAULT {}").format(sql.Identifier(column), sql.Literal(value))
                for column, value in zip(CREATED, (True, 1, scratch.now), strict=False)))
            with copy_rows(conn, name, COLUMNS[entity], freeze=True) as write:
                yield write
            conn.execute(f"ALTER TABLE {name} " + ", ".join(f'ALTER COLUMN "{c}" DROP DEFAULT' for c in CREATED))
            conn.execute(f"SET maintenance_work_mem = '{BULK_MAINTENANCE_MEM}'")
            for n, (_, definition, _) in enumerate(scratch.schema[entity]):
                conn.execute(_on_scratch(definition, scratch.index(entity, n), name))
        return
    # Through apsw: its executemany binds values a third faster than the sqlite3 module's,
    # and binding is the helper's largest cost (the constants are in the statement).
    import apsw

    db = apsw.Connection(scratch.path(entity))
    try:
        db.execute("PRAGMA journal_mode=OFF")  # a scratch file: thrown away if anything fails
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-200000")  # (its index builds sort in memory)
        db.execute("BEGIN")
        table, *indexes = scratch.schema[entity]
        db.execute(table)
        names = ", ".join(f'"{c}"' for c in (*COLUMNS[entity], *CREATED))
        marks = ", ".join("?" * len(COLUMNS[entity]))
        now = scratch.now.replace("'", "''")
        insert = f"INSERT INTO \"{entity}\" ({names}) VALUES ({marks}, {ACTIVE}, 1, '{now}')"
        yield lambda rows: db.executemany(insert, rows)
        for index in indexes:  # built here, on the helper's core: the store copies them
            db.execute(index)
        db.execute("COMMIT")
    finally:
        db.close()
