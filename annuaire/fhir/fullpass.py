"""The first rendering of the FHIR cache, on two cores.

A full pass into an EMPTY cache (after a first national import, or a cache
dropped to be rebuilt) is what a server waits for before it answers: every
Practitioner, PractitionerRole and Organization rendered once (4.6 M
resources, 22.6 M tokens, ~13 GB at national scale). `cache.refresh` sends
it here; a full pass over a cache that holds something still compares
digests in one process (`cache._full_pass`).

Where the time went (one process, national store, 880 s of CPU): reading the
records and building the documents in Python (~60 %), and writing them:
22.6 M token rows at ~6.5 µs each in SQLite's b-trees, the documents, and on
SQLite a commit every 2,000 resources, each checkpointing the WAL: ~26 GB
written and synced on a disk that writes ~120 MB/s. Hence:

- Two processes render. The work is cut into units (4,000 ids of one kind);
  this process and a helper (`serve`) each take the next free unit, the
  helper always having a few queued so that it never waits; the helper sends
  each unit's rows back through a pipe (pickled: ~6 µs a resource in all) and
  this process, the only writer, writes the units in order, so the tables end
  in the order a one-process pass leaves them. Writing costs this process
  about as much CPU as rendering costs the helper, so it renders only when it
  has nothing to write.
- The same functions build the rows as in the one-process paths
  (`cache._render_*`, `cache._rows`): the cache holds the same bytes
  (`tests/fhir/test_fhir_render_parallel.py`, and `bench/fhir_render.py`
  compares every row at national scale). Legal entities are numbered first,
  in the order the one-process pass numbers them (the new FINESS EJ of each
  chunk of structures in id order, sorted within the chunk), so both
  processes only read their numbers.
- Nothing to compare: no digest looked up, nothing deleted, every resource at
  version 1 and dated as `cache._write` dates a new one.
- One write transaction (`Store.write(bulk=True)`). On SQLite, with no other
  connection to the file, it writes straight into the database file under a
  rollback journal: each page written once, and synced once, at the end
  (in WAL mode every page is written twice). Then nobody else may read the
  file while it writes, so the helper reads a snapshot: the tables the
  renderer reads copied into a scratch file beside the store, with the store's
  definitions and the indexes its queries use, by SQLite's transfer
  optimisation (rows and index entries copied as stored: 1.7 GB in ~15 s).
  The fhir tables keep their indexes while they are filled: building them at
  the end took 95 s for what maintaining them costs 72 s of CPU spread over
  the pass. A 1 GB page cache for the writer (instead of 200 MB) keeps the
  pages the inserts go to.
  On PostgreSQL the tables are truncated in the transaction (COPY writes the
  rows frozen) and their indexes built once at the end; readers never wait
  for the writer, so the helper reads the store itself.
- The sector of every site comes from one scan of the activities per process
  (`cache._all_sectors`), not from each site's activities (145 µs a site).

With other connections open (a running server), SQLite stays in WAL mode:
the same single transaction then grows the WAL to the size of the cache, and
other writers wait for it, as they wait for a first import.

A failure of either process (an error, a kill) raises here and the
transaction is rolled back: the cache is empty as before, the cursor not
saved. The helper is killed in any case and the snapshot deleted; a snapshot
left by a renderer that was itself killed is deleted by the next rendering
(only the lease holder renders).
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Table, func, select

from annuaire.errors import DirectoryError
from annuaire.fhir import cache, packing
from annuaire.fhir.render import Rendered
from annuaire.fhir.tables import (
    fhir_dictionary,
    fhir_legal_entity,
    fhir_resource,
    fhir_telecom,
    fhir_token,
)
from annuaire.gcpause import gc_paused
from annuaire.store import Store, open_store, sqlitedriver
from annuaire.store.bulkload import loading_empty
from annuaire.store.clock import utc_now
from annuaire.store.diff import bulk_inserts
from annuaire.store.schema import activity, diploma, mailbox, person, skill, structure

UNIT = 4000  # ids per unit of work (~6 MB of rows)
QUEUED = 4  # units given to the helper ahead: it always has the next one
AHEAD = 8  # units this process may render past the next one to write (memory: ~6 MB a unit)
HELPED = 4  # units from which a helper is worth its start (~0.5 s)
KINDS = {"person": ("Practitioner", person), "activity": ("PractitionerRole", activity),
         "structure": ("Organization", structure)}
TABLES = (fhir_resource, fhir_token, fhir_telecom)
CACHE_KIB = 1_000_000  # SQLite page cache of the writing connection during the pass
COLUMNS = (cache.RESOURCE_COLUMNS, cache.TOKEN_COLUMNS, cache.TELECOM_COLUMNS)

Batch = tuple[list[tuple], list[tuple], list[tuple]]  # fhir_resource, fhir_token, fhir_telecom rows


@dataclass(frozen=True)
class Unit:
    """Ids first..last of `kind` (person, activity, structure), or the FINESS EJ of a chunk of
    legal entities (`finesses`, rendered by this process only)."""

    kind: str
    first: int = 0
    last: int = 0
    finesses: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "Organization" if self.kind == "legal" else KINDS[self.kind][0]


def load(store: Store, stats: cache.RefreshStats, progress: cache.Progress | None = None) -> None:
    """Render every resource into the empty cache (the caller holds the lease)."""
    with gc_paused():
        number_legal_entities(store)
        units = plan(store)
        with Source(store) as source, Rendering(source, units) as rendering, _Writer(store) as writer:
            for unit, batch in rendering.batches():
                writer.write(batch)
                stats.rendered += len(batch[0])
                stats.changed += len(batch[0])
                if progress:
                    progress(unit.label, len(batch[0]))
    # The planner's statistics of the tables just filled (PostgreSQL): taken while they were empty,
    # they made every search a scan (17 searches/s at national scale, p99 1.8 s).
    store.analyze([table.name for table in TABLES], vacuum=False)


class Source:
    """Where the records are read from while the cache is written.

    PostgreSQL: the store (readers and the writer do not wait for each other). SQLite: a
    snapshot of the tables the renderer reads, copied into a scratch file beside the store
    (`snapshot`): the cache is written in one transaction, and once its pages start going to
    the file nobody else may read the store until it commits (no WAL: see `_Writer`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: Path | None = None
        self.reader = store

    @property
    def url(self) -> str:
        return self.reader.url

    def __enter__(self) -> Source:
        if self.store.bulk_writes_block_readers:
            discard_snapshots(self.store)  # (left by a renderer that was killed: we hold the lease)
            self.path = _snapshot_path(self.store)
            try:
                snapshot(self.store, self.path)
                self.reader = open_store(f"sqlite:///{self.path}", upgrade=False)
            except BaseException:
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            if self.reader is not self.store:
                self.reader.dispose()
            _unlink(self.path)


SNAPSHOT_SUFFIX = ".fhir-render-"
# The tables the renderer reads, and the indexes its queries use (by their columns).
SNAPSHOT: dict[Table, list[tuple[str, ...]]] = {
    person: [("id_nat",)],
    activity: [("person_id",), ("structure_id", "active", "person_id")],
    structure: [("idnat",), ("finess_ej",)],
    skill: [("person_id",)],
    diploma: [("person_id",)],
    mailbox: [("holder",), ("structure_idnat",)],
    fhir_legal_entity: [],
    fhir_dictionary: [],
}


def _snapshot_path(store: Store) -> Path:
    return Path(f"{store.engine.url.database}{SNAPSHOT_SUFFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.sqlite")


def _unlink(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def discard_snapshots(store: Store) -> None:
    """Remove the snapshots beside an SQLite store (only the lease holder may)."""
    database = Path(store.engine.url.database or "")
    for path in database.parent.glob(f"{database.name}{SNAPSHOT_SUFFIX}*.sqlite"):
        _unlink(path)


def snapshot(store: Store, path: Path) -> None:
    """SQLite: copy the tables the renderer reads into a new file, in one read transaction.

    The file gets the store's own definitions of these tables and of the indexes the
    renderer's queries use, so that `INSERT INTO t SELECT * FROM store.t` is SQLite's
    transfer optimisation: rows and index entries copied as stored, nothing decoded or
    sorted (national: ~2 GB in ~N s)."""
    database = store.engine.url.database
    db = sqlitedriver.connect(str(path), isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")  # (a scratch file: thrown away if anything fails)
        db.execute("PRAGMA synchronous=OFF")
        db.execute("ATTACH DATABASE ? AS store", (database,))
        db.execute("PRAGMA store.busy_timeout=60000")
        db.execute("BEGIN")
        for table, wanted in SNAPSHOT.items():
            names = [index.name for index in table.indexes if tuple(c.name for c in index.columns) in wanted]
            for (sql,) in db.execute(
                "SELECT sql FROM store.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
                "AND (type = 'table' OR name IN (SELECT value FROM json_each(?))) ORDER BY type = 'index'",
                (table.name, orjson.dumps(names).decode()),
            ).fetchall():
                db.execute(sql)
            db.execute(f'INSERT INTO main."{table.name}" SELECT * FROM store."{table.name}"')
        db.execute("COMMIT")
        db.execute("DETACH DATABASE store")
    finally:
        db.close()


# --- the plan ------------------------------------------------------------------


def number_legal_entities(store: Store) -> None:
    """Give each legal entity named by a structure its number, as the one-process pass would:
    chunk by chunk of `cache.CHUNK` structures in id order, the new FINESS EJ of a chunk sorted."""
    with store.write() as conn:
        known = set(conn.execute(select(fhir_legal_entity.c.finess)).scalars())
        rows = conn.execute(select(structure.c.finess_ej).order_by(structure.c.id)).scalars().all()
        new: list[str] = []
        for i in range(0, len(rows), cache.CHUNK):
            fresh = sorted({f for f in rows[i : i + cache.CHUNK] if f and f not in known})
            known.update(fresh)
            new.extend(fresh)
        if new:
            conn.execute(fhir_legal_entity.insert(), [{"finess": f} for f in new])


def plan(store: Store) -> list[Unit]:
    """The units, in the order the one-process pass writes: practitioners, roles, sites, legal entities."""
    units: list[Unit] = []
    with store.read() as conn:
        for kind, (_, table) in KINDS.items():
            low, high = conn.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
            if low is not None:
                units.extend(Unit(kind, first, min(first + UNIT - 1, high)) for first in range(low, high + 1, UNIT))
        finesses = sorted(conn.execute(
            select(structure.c.finess_ej).where(structure.c.finess_ej.is_not(None)).distinct()).scalars())
    units.extend(Unit("legal", finesses=tuple(finesses[i : i + cache.CHUNK]))
                 for i in range(0, len(finesses), cache.CHUNK))
    return units


class Renderer:
    """Renders units in one process; keeps what a process reads once for all of them."""

    def __init__(self) -> None:
        self._sectors: dict[int, str] | None = None
        self._pack: packing.Pack | None = None  # (the pass's dictionary, trained before it starts)

    def render(self, conn: Connection, unit: Unit) -> Batch:
        """The rows of a unit as a one-process pass writes them into an empty cache."""
        ids_ = list(range(unit.first, unit.last + 1))
        items: list[Rendered]
        if unit.kind == "person":
            items = cache._render_persons(conn, ids_, True)
        elif unit.kind == "activity":
            items = cache._render_activities(conn, ids_, True)
        elif unit.kind == "structure":
            if self._sectors is None:
                self._sectors = cache._all_sectors(conn)
            items = cache._render_structures(conn, ids_, True, create=False, sectors=self._sectors)
        else:
            items = cache._render_legal(conn, set(unit.finesses), set(), create=False)
        now = utc_now()
        if self._pack is None:
            self._pack = packing.packer(conn)
        pack = self._pack
        resources: list[tuple] = []
        tokens: list[tuple] = []
        telecoms: list[tuple] = []
        for r in items:
            cache._rows(r, r.body_digest(), 1, r.changed_at or now, now, resources, tokens, telecoms, pack)
        return resources, tokens, telecoms


# --- rendering on two cores -------------------------------------------------------


class Rendering:
    """The units rendered by this process and a helper; `batches()` yields them in order."""

    def __init__(self, source: Source, units: list[Unit]) -> None:
        self.source = source
        self.units = units
        self._helped = [i for i, u in enumerate(units) if u.kind != "legal"]  # units the helper may take
        self._process: subprocess.Popen | None = None
        self._answers: queue.Queue = queue.Queue()

    def __enter__(self) -> Rendering:
        if len(self._helped) >= HELPED and (os.cpu_count() or 1) > 1:
            self._process = subprocess.Popen(
                [sys.executable, "-c", "from annuaire.fhir.fullpass import serve; serve()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
            )
            self._send(self.source.url)
            threading.Thread(target=self._receive, name="fhir-render-helper", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]  # stdin=PIPE, stdout=PIPE: never None
            except OSError:
                pass
        process.wait()

    def _send(self, message: object) -> None:
        try:
            pickle.dump(message, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[union-attr,arg-type]  # started with stdin=PIPE
            self._process.stdin.flush()  # type: ignore[union-attr]  # started with stdin=PIPE
        except OSError:  # the helper died: its answers say so
            pass

    def _receive(self) -> None:
        """Thread: the helper's answers as they come (the helper never waits for this process)."""
        try:
            while True:
                self._answers.put(pickle.load(self._process.stdout))  # type: ignore[union-attr,arg-type]  # started with stdout=PIPE
        except Exception as exc:  # noqa: BLE001 - EOF: the helper ended (or died); said once asked
            self._answers.put(("gone", exc))

    def batches(self) -> Iterator[tuple[Unit, Batch]]:
        """Each unit and its rows, in order. This process renders the next free unit while
        the one to write next is the helper's, up to AHEAD units rendered and not written."""
        units = self.units
        done: dict[int, Batch] = {}
        taken = [False] * len(units)
        queued = 0  # units sent to the helper and not answered yet
        helped = iter(self._helped)
        renderer = Renderer()
        with self.source.reader.read() as conn:
            for n, unit in enumerate(units):
                while n not in done:
                    while self._process is not None and queued < QUEUED:
                        i = next((i for i in helped if not taken[i]), None)
                        if i is None:
                            break
                        taken[i] = True
                        queued += 1
                        self._send((i, units[i]))
                    mine = n if not taken[n] else next(
                        (i for i in range(n + 1, min(len(units), n + AHEAD)) if not taken[i]), None)
                    answer = self._answer(block=mine is None)
                    if answer is not None:
                        done[answer[0]] = answer[1]
                        queued -= 1
                        continue
                    taken[mine] = True  # type: ignore[index]  # mine None: a blocking wait brought an answer (continue above)
                    try:
                        done[mine] = renderer.render(conn, units[mine])  # type: ignore[index]  # mine is None only when an answer came
                    finally:
                        conn.rollback()  # (no snapshot held while waiting: the WAL may be checkpointed)
                yield unit, done.pop(n)
        if self._process is not None:
            self._send(None)

    def _answer(self, block: bool) -> tuple[int, Batch] | None:
        """The helper's next answer: None if none is there (and `block` is False)."""
        if self._process is None:
            return None
        try:
            answer = self._answers.get(block=block)
        except queue.Empty:
            return None
        if answer[0] == "gone":
            raise DirectoryError(f"the FHIR rendering's helper process ended unexpectedly ({answer[1]!r})")
        if answer[0] == "error":
            raise DirectoryError(f"the FHIR rendering's helper process failed: {answer[1]}")
        return answer[1], answer[2]


def serve() -> None:
    """The helper: the store's URL, then units to render, each answered with its rows.

    The answers go to the original stdout, kept for them alone: file descriptor 1 and
    `sys.stdout` then point to stderr, so that nothing else written by this process (a
    library's print, a C extension's message) can break the stream of pickles."""
    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    store = open_store(pickle.load(stdin), upgrade=False)
    renderer = Renderer()
    try:
        with gc_paused():
            while (message := pickle.load(stdin)) is not None:
                n, unit = message
                try:
                    with store.read() as conn:
                        answer: tuple = ("done", n, renderer.render(conn, unit))
                except Exception as exc:  # noqa: BLE001 - sent back, raised by the renderer
                    answer = ("error", f"{exc!r}")
                pickle.dump(answer, stdout, protocol=pickle.HIGHEST_PROTOCOL)
                stdout.flush()
                if answer[0] == "error":
                    return
    finally:
        store.dispose()


# --- writing -------------------------------------------------------------------


class _Writer:
    """Writes the batches into the empty tables, in one transaction.

    SQLite: `Store.write(bulk=True)`: with no other connection to the file, the
    transaction writes straight into the database file, its rollback journal keeping
    the few pages that existed before; in WAL mode every page would be written twice,
    to the log and then into the file (~13 GB of a national cache, on a disk that
    writes ~120 MB/s). With other connections open (a running server) the file stays
    in WAL mode.
    PostgreSQL: the tables truncated in the transaction (COPY writes the rows frozen)
    and their indexes dropped, built once at the end (`loading_empty`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._renewed = 0.0

    def __enter__(self) -> _Writer:
        self._bulk = self.store.write(bulk=True)
        self._conn = self._bulk.__enter__()
        self._load = loading_empty(self._conn, TABLES, cache_kib=CACHE_KIB)
        self._loading = self._load.__enter__()
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            self._load.__exit__(kind, exc, tb)
        finally:
            self._bulk.__exit__(kind, exc, tb)

    def write(self, batch: Batch) -> None:
        conn = self._conn
        for table, columns, rows in zip(TABLES, COLUMNS, batch, strict=False):
            if rows:
                with bulk_inserts(conn, table.name, columns, loading=self._loading) as write:
                    write(rows)
        if time.monotonic() - self._renewed > 10:
            cache._renew_lease(conn)  # (visible at the commit; PostgreSQL: holds the lease row till then)
            self._renewed = time.monotonic()

