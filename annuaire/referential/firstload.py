"""A first national import on two cores.

A first import creates every record, and its time goes to building rows in
Python and inserting them. So this process builds the persons and structures
while a helper process builds the activities, savoir-faire and diplomas (5 M
of the 7.35 M records) into a scratch SQLite database, keyed by national
ids. The importer then copies each scratch table into the store with one
INSERT … SELECT that resolves the ids by joins (C speed, no Python per row).

The rows are built by the same functions as the importer's (`importer`):
the store ends exactly as an import in one process would leave it. An
ImportFileError in the helper is raised again by the importer, naming the
file and the line; the whole import is then rolled back.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from annuaire import formats
from annuaire.errors import DirectoryError
from annuaire.referential import records
from annuaire.referential.groups import Groups
from annuaire.referential.prints import Packed, pack
from annuaire.referential.reader import Lines, Source
from annuaire.store.digest import digest

BATCH = 20_000
CHILDREN = {formats.SAVOIR_FAIRE: ("skill", records.SKILL), formats.DIPLOMES: ("diploma", records.DIPLOMA)}
ACTIVITY_KEYS = ("id_nat", "tech_id")  # the natural keys a scratch activity row carries


@dataclass
class Child:
    """What the helper found in a savoir-faire or diploma file, besides its rows."""

    checks: object  # the file's unknown codes (importer._CodeCheck)
    orphans: object  # lines of persons absent from Personne_activite (importer.Orphans)
    prints: Packed | None  # its fingerprints, to store (None: not UTF-8, not kept)


@dataclass
class Built:
    """The helper's answer."""

    children: dict[str, Child] = field(default_factory=dict)
    error: Exception | None = None


def scratch_columns(entity: str) -> tuple[str, ...]:
    """Columns of a scratch table, in order: the record's key, its natural keys, its values, its digest."""
    if entity == "activity":
        return ("key", *ACTIVITY_KEYS, *records.ACTIVITY, "digest")
    return ("key", "id_nat", *CHILDREN[_kind(entity)][1], "digest")


def _kind(entity: str) -> str:
    return next(kind for kind, (name, _) in CHILDREN.items() if name == entity)


class FirstLoad:
    """The helper process building a first import's activities and children, started at once."""

    def __init__(self, sources: dict[str, Source], scratch: Path) -> None:
        self.scratch = scratch
        self.kinds = [kind for kind in (formats.SAVOIR_FAIRE, formats.DIPLOMES) if kind in sources]
        self._built: Built | None = None
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from annuaire.referential.firstload import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
        )
        threading.Thread(target=self._send, args=((sources, str(scratch)),), daemon=True).start()

    def _send(self, job: object) -> None:
        try:
            with self._process.stdin:  # type: ignore[union-attr]
                pickle.dump(job, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:  # the helper died: built() says so
            pass

    def built(self) -> Built:
        """Wait for the helper; raise what it raised (an ImportFileError names the file and line)."""
        if self._built is None:
            try:
                self._built = pickle.load(self._process.stdout)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001
                raise DirectoryError(f"the import's helper process failed ({exc!r}); nothing was imported") from exc
            finally:
                self.close()
        if self._built.error is not None:
            raise self._built.error
        return self._built

    def close(self) -> None:
        if self._process.poll() is None and self._built is None:
            self._process.kill()
        self._process.stdout.close()  # type: ignore[union-attr]
        self._process.wait()


def serve() -> None:
    """The helper: a job from stdin, the scratch database written, a `Built` to stdout."""
    sources, scratch = pickle.load(sys.stdin.buffer)
    built = Built()
    try:
        _build(sources, Path(scratch), built)
    except Exception as exc:  # noqa: BLE001 - sent back, raised again by the importer
        built.error = exc
    sys.stdout.buffer.write(pickle.dumps(built, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


def _build(sources: dict[str, Source], scratch: Path, built: Built) -> None:
    from annuaire.referential.importer import Orphans, _CodeCheck, _unique_key, child_lines, code_check

    db = sqlite3.connect(scratch, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")  # a scratch file: thrown away if anything fails
    db.execute("PRAGMA synchronous=OFF")
    try:
        db.execute("BEGIN")
        persons = _build_activities(db, sources[formats.PERSONNE_ACTIVITE], _unique_key)
        for kind in (formats.SAVOIR_FAIRE, formats.DIPLOMES):
            if kind not in sources:
                continue
            entity, mapping = CHILDREN[kind]
            lines = Lines(sources[kind])
            groups = Groups(None)
            lines.read_header()
            index = lines.column_index()
            checks: _CodeCheck = code_check(index)
            orphans = Orphans()
            rows = ((n, lines.fields(text, n)) for n, text in lines.grouped(groups))
            writer = _Writer(db, entity)
            for id_nat, key, values in child_lines(rows, index, mapping, entity, persons, checks, orphans):
                writer.add((key, id_nat, *values, digest(values)))
            writer.flush()
            prints = pack(lines.header_line, groups.prints) if lines.encoding == "utf-8" else None
            built.children[kind] = Child(checks, orphans, prints)
        db.execute("COMMIT")
    finally:
        db.close()


def _build_activities(db: sqlite3.Connection, source: Source, unique_key) -> set[str]:  # type: ignore[no-untyped-def]
    """The activity rows of Personne_activite; returns the persons of the file."""
    lines = Lines(source)
    lines.read_header()
    index = lines.column_index()
    i_idnat, i_tech = index[records.ID_NAT], index[records.TECH_ID]
    pick = records.picker(index, records.ACTIVITY)
    writer = _Writer(db, "activity")
    keys: set[str] = set()
    persons: set[str] = set()
    for _, fields in lines:
        id_nat, tech = fields[i_idnat], fields[i_tech]
        persons.add(id_nat)
        values = pick(fields)
        writer.add((unique_key(f"{id_nat}|{tech}|", keys), id_nat, tech, *values, digest(values)))
    writer.flush()
    return persons


class _Writer:
    """Rows of one scratch table, inserted in batches."""

    def __init__(self, db: sqlite3.Connection, entity: str) -> None:
        columns = scratch_columns(entity)
        quoted = ", ".join(f'"{c}"' for c in columns)
        db.execute(f'CREATE TABLE "{entity}" ({quoted})')
        self.db = db
        self.sql = f'INSERT INTO "{entity}" VALUES ({", ".join("?" * len(columns))})'
        self.rows: list[tuple] = []

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        self.db.executemany(self.sql, self.rows)
        self.rows = []
