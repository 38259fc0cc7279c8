"""What a careless or hostile national file cannot do: deactivate the directory, block the later
imports, half-apply a day, or take the memory. Each refusal names what and where, and changes nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from annuaire.errors import ImportFileError
from annuaire.referential.importer import MassDeactivation, import_paths
from tests.referential.conftest import mss_zip, ps_zip
from tests.referential.dump import dump


def _rezip(source: Path, out: Path, ts: str, edit) -> Path:  # type: ignore[no-untyped-def]
    """A copy of a national zip under another date, each member's lines passed through `edit`."""
    name = source.name.rsplit("_", 1)[0]
    target = out / f"{name}_{ts}.zip"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            lines = zin.read(info.filename).decode("utf-8").splitlines()
            member = info.filename.rsplit("_", 1)[0] + f"_{ts}.txt"
            zout.writestr(member, "\n".join(edit(member, lines)) + "\n")
    return target


@pytest.fixture
def imported(store, world):  # type: ignore[no-untyped-def]
    import_paths(store, [ps_zip(world[0]), mss_zip(world[0])])
    return store


@pytest.mark.parametrize("cut", ["header only", "half", "a tenth"])
def test_a_truncated_referential_is_refused_with_its_figures(imported, world, tmp_path, cut) -> None:  # type: ignore[no-untyped-def]
    keep = {"header only": 0.0, "half": 0.5, "a tenth": 0.9}[cut]
    truncated = _rezip(ps_zip(world[0]), tmp_path, "202601020300",
                       lambda _, lines: lines[:1 + int((len(lines) - 1) * keep)])
    before = dump(imported)
    with pytest.raises(MassDeactivation) as refused:
        import_paths(imported, [truncated])
    message = refused.value.message
    assert "active persons" in message and "--force" in message and "Nothing was changed" in message
    assert dump(imported) == before
    # forced, it applies (the operator checked the file)
    [summary] = import_paths(imported, [truncated], force=True)
    assert summary.counts["person"].deactivated > 0


def test_a_normal_day_passes_the_guard(imported, world) -> None:  # type: ignore[no-untyped-def]
    summaries = import_paths(imported, [ps_zip(world[1]), mss_zip(world[1])])
    assert summaries[0].counts["person"].deactivated >= 0 and summaries[1].mailboxes is not None


def test_a_day_needs_its_three_files(imported, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(ps_zip(world[1])) as z:
        z.extractall(tmp_path)
    alone = next(tmp_path.glob("PS_LibreAcces_Personne_activite_*.txt"))
    before = dump(imported)
    with pytest.raises(ImportFileError, match="three files; missing: PS_LibreAcces_SavoirFaire"):
        import_paths(imported, [alone])
    assert dump(imported) == before


def test_a_file_dated_in_the_future_is_refused(imported, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    future = _rezip(ps_zip(world[1]), tmp_path, "299912312359", lambda _, lines: lines)
    before = dump(imported)
    with pytest.raises(ImportFileError, match="in the future"):
        import_paths(imported, [future])
    assert dump(imported) == before
    # and the next normal file is still accepted (nothing recorded the far-future date)
    import_paths(imported, [ps_zip(world[1])])
    bad = _rezip(ps_zip(world[1]), tmp_path, "202613450300", lambda _, lines: lines)
    with pytest.raises(ImportFileError, match="not a valid YYYYMMDDhhmm date"):
        import_paths(imported, [bad])


def test_one_import_is_one_transaction(imported, world, tmp_path, store_url) -> None:  # type: ignore[no-untyped-def]
    """A malformed MSSanté file given with the day's referential: exit 2, and not even the referential."""
    from annuaire.cli.app import cli

    broken = _rezip(mss_zip(world[1]), tmp_path, "202601020300",
                    lambda _, lines: [*lines[:5], lines[5] + "|extra field", *lines[6:]])
    before = dump(imported)
    with pytest.raises(ImportFileError, match="line 6"):
        import_paths(imported, [ps_zip(world[1]), broken])
    assert dump(imported) == before
    result = CliRunner().invoke(cli, ["--db", store_url, "import", str(ps_zip(world[1])), str(broken)])
    assert result.exit_code == 2 and "line 6" in result.output
    assert dump(imported) == before
    # a mirror refused for its deletions (after the referential was written) undoes the referential too
    emptied = _rezip(mss_zip(world[1]), tmp_path, "202601020301", lambda _, lines: lines[:2])
    result = CliRunner().invoke(cli, ["--db", store_url, "import", str(ps_zip(world[1])), str(emptied)])
    assert result.exit_code == 5 and "would delete" in result.output
    assert dump(imported) == before


def test_a_line_without_end_is_refused_at_once(imported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Memory stays bounded: a 40 MB line is refused after one block, naming its line."""
    import resource

    from annuaire import formats

    path = tmp_path / "PS_LibreAcces_Personne_activite_202601020300.txt"
    with open(path, "w") as out:
        out.write("|".join(formats.PERSONNE_ACTIVITE_COLUMNS) + "|\n")
        out.write("8" * (40 << 20))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImportFileError, match=r"line 2: line longer than 65,536 characters"):
        import_paths(imported, [path], force=True)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100 << 10  # KiB: far below the file
    # a long line inside a block is refused too, by its number
    path.write_text("|".join(formats.PERSONNE_ACTIVITE_COLUMNS) + "|\n" + "|" * 56 + "\n" + "x" * 70_000 + "\n")
    with pytest.raises(ImportFileError, match=r"line 3: line longer than"):
        import_paths(imported, [path], force=True)


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_scratch_data_of_a_dead_import_is_removed_by_the_next(store, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from sqlalchemy import text

    dead = f"{_dead_pid()}_0badcafe"
    alive = f"{os.getpid()}_c0ffee00"
    if store.is_sqlite:
        db = Path(store.engine.url.database)
        stale = db.with_name(f".{db.name}.import-{dead}-activity.sqlite")
        running = db.with_name(f".{db.name}.import-{alive}-activity.sqlite")
        stale.write_bytes(b"x" * 1000)
        running.write_bytes(b"y")
    else:
        with store.write() as conn:
            conn.execute(text(f'CREATE TABLE "import_{dead}_activity" (id int)'))
            conn.execute(text(f'CREATE TABLE "import_{alive}_activity" (id int)'))
        import psycopg

        from annuaire.referential.firstload import _libpq

        holder = psycopg.connect(_libpq(store.url, alive))  # the session of a running import
    try:
        [summary] = import_paths(store, [ps_zip(world[0])])
        assert any("no longer runs" in w and dead in w for w in summary.warnings)
        if store.is_sqlite:
            assert not stale.exists() and running.exists()
            running.unlink()
        else:
            with store.read() as conn:
                names = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'import%'")).scalars())
            assert names == {f"import_{alive}_activity"}
    finally:
        if not store.is_sqlite:
            holder.close()


def test_a_killed_first_import_and_its_helper_leave_nothing_for_ever(store, world) -> None:  # type: ignore[no-untyped-def]
    """kill -9 of the importer and its helper in the middle of a first import: the store is as before,
    and the next import removes their scratch data (with a message) and succeeds."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from sqlalchemy import text

    script = ("import annuaire.referential.importer as i; i.FIRST_LOAD_MIN_SIZE = 0; "
              "from annuaire.cli.app import main; main()")
    process = subprocess.Popen([sys.executable, "-c", script, "--db", store.url, "import", "--no-render",
                                str(ps_zip(world[0]))], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scratch() -> list[str]:
        if store.is_sqlite:
            db = Path(store.engine.url.database)
            return [p.name for p in db.parent.glob(f".{db.name}.import-*.sqlite")]
        with store.read() as conn:
            return list(conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'import%'")).scalars())

    deadline = time.monotonic() + 120
    while not scratch():
        assert process.poll() is None, "the import ended before its helper wrote anything"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the importer and its helper
    process.wait()
    time.sleep(0.5)  # (PostgreSQL notices the closed sessions)
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM person")).scalar() == 0  # nothing committed
    assert scratch()  # left behind…
    [summary] = import_paths(store, [ps_zip(world[0])])
    assert any("no longer runs" in w for w in summary.warnings)
    assert scratch() == [] and summary.counts["person"].created > 0  # …removed by the next import
