"""The compression of new bodies (`fhir.packing.packer`) is looked up once per refresh, not once per
batch written: the store's dictionary is read as often whether a refresh writes its resources in
one batch or in dozens, on the three paths that write them (journal follower, full pass, first
rendering on two cores), on both engines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fhir_data import World, populate
from sqlalchemy import Engine, event

from annuaire.fhir import cache, fullpass
from annuaire.fhir.cache import refresh
from annuaire.store import Store
from annuaire.store.schema import person
from tests.pg import fresh_store

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def dictionary_reads() -> Iterator[list[str]]:
    """The statements reading `fhir_dictionary`, on any engine of this process, while inside."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "fhir_dictionary" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def batches_and_reads(monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> tuple[int, int]:
    """How many batches `run` wrote (`cache._write` calls) and how many dictionary reads it made."""
    calls: list[int] = []
    write = cache._write

    def counted(*args: Any) -> None:
        calls.append(1)
        write(*args)

    monkeypatch.setattr(cache, "_write", counted)
    with dictionary_reads() as seen:
        run()
    return len(calls), len(seen)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def rendered(engine: str, tmp_path: Path) -> Iterator[tuple[Store, dict[str, Any]]]:
    """A populated store whose cache was rendered once (its dictionary trained)."""
    with fresh_store(engine, tmp_path) as store:
        data = populate(store)
        refresh(store)
        yield store, data


@pytest.mark.parametrize("path", ["full pass", "journal follower"])
def test_the_dictionary_is_read_once_per_refresh_not_per_batch(rendered, monkeypatch, path):
    store, data = rendered
    counts = []
    for chunk in (3, 100_000):  # dozens of batches, then one a kind
        monkeypatch.setattr(cache, "CHUNK", chunk)
        if path == "full pass":
            run = lambda: refresh(store, full=True)
        else:
            for n in range(12):  # a dozen practitioners renamed: their practitioners and roles re-rendered
                World(store).change(person, "person", "id_nat", f"82{n:010d}", last_name=f"RENOMME{chunk}X{n}")
            run = lambda: refresh(store)
        counts.append(batches_and_reads(monkeypatch, run))
    (many, reads_of_many), (few, reads_of_few) = counts
    assert many > few * 3, counts  # (the small chunks did split the writes)
    assert reads_of_many == reads_of_few, counts


def test_the_first_rendering_reads_the_dictionary_once_per_process(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(fullpass, "HELPED", 10**9)  # no helper process: every unit rendered here
    reads = []
    for unit in (7, 10**9):  # dozens of units, then one a kind
        monkeypatch.setattr(fullpass, "UNIT", unit)
        folder = tmp_path / str(unit)
        folder.mkdir()
        with fresh_store(engine, folder) as store:
            populate(store)
            units = len(fullpass.plan(store))
            with dictionary_reads() as seen:
                stats = refresh(store, parallel=True)
            assert stats.full and stats.rendered > 0
            reads.append((units, len(seen)))
    (many, reads_of_many), (few, reads_of_few) = reads
    assert many > few * 3, reads
    assert reads_of_many == reads_of_few, reads
