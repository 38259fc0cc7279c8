"""Big files are parsed in a worker process: same records, same errors, as in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from annuaire.errors import ImportFileError
from annuaire.referential import workers
from annuaire.referential.importer import import_paths
from annuaire.store import open_store
from annuaire.store.schema import activity, diploma, person, skill, structure

from .conftest import ps_zip
from .dump import dump
from .test_import import BAD_EDITS, rewrite_zip

TABLES = {person: "id_nat", structure: "tech_id", activity: "key", skill: "key", diploma: "key"}


def _state(store) -> dict[str, list[tuple]]:
    """Every record's key, content digest, version and state (not the times, which differ per run)."""
    with store.read() as conn:
        return {
            table.name: sorted(conn.execute(select(table.c[key], table.c.digest, table.c.version, table.c.active)).all())
            for table, key in TABLES.items()
        }


def _import_both_days(url: str, world: dict[int, Path]) -> tuple[list, dict]:
    store = open_store(url)
    summaries = [import_paths(store, [ps_zip(world[day])])[0].as_dict() for day in (0, 1)]
    for s in summaries:
        s.pop("run")
    state = _state(store)
    store.dispose()
    return summaries, state


def test_worker_process_gives_the_same_records(world, tmp_path, monkeypatch):
    in_process = _import_both_days(f"sqlite:///{tmp_path / 'a.sqlite'}", world)
    monkeypatch.setattr(workers, "MIN_BYTES", 0)
    in_worker = _import_both_days(f"sqlite:///{tmp_path / 'b.sqlite'}", world)
    assert in_worker == in_process
    assert in_process[0][1]["entities"]["activity"]["updated"] > 0  # day 1 really changed things


@pytest.mark.parametrize("kind", ["wrong field count", "invalid encoding"])
def test_worker_errors_name_file_and_line_and_change_nothing(world, tmp_path, monkeypatch, kind):
    monkeypatch.setattr(workers, "MIN_BYTES", 0)
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    import_paths(store, [ps_zip(world[0])])
    before = dump(store)
    bad = rewrite_zip(ps_zip(world[1]), tmp_path / ps_zip(world[1]).name, BAD_EDITS[kind])
    with pytest.raises(ImportFileError, match=r"line 100"):
        import_paths(store, [bad])
    assert dump(store) == before
    store.dispose()


def test_a_failure_in_the_importer_stops_the_workers(world, tmp_path, monkeypatch):
    import multiprocessing

    from annuaire.store import diff

    monkeypatch.setattr(workers, "MIN_BYTES", 0)
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    calls = {"n": 0}
    offer = diff.TableSync.offer

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2000:
            raise RuntimeError("disk full (simulated)")
        return offer(self, *args, **kwargs)

    monkeypatch.setattr(diff.TableSync, "offer", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        import_paths(store, [ps_zip(world[0])])
    assert multiprocessing.active_children() == []
    with store.read() as conn:
        assert conn.execute(select(person.c.id)).first() is None
    store.dispose()
