"""Synchronising from a URL (our real download endpoint), and interrupted runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from annuaire.cli import cli
from annuaire.config import Settings
from annuaire.extractions.http import routes
from annuaire.localsync.filters import Filters
from annuaire.localsync.source import SourceUnavailable
from annuaire.localsync.sync import sync

from ..extractions.live import serve
from .helpers import box, dump, standard_boxes, write_extraction

PATH = "/extractions/Extraction_Correspondance_MSSante"


@pytest.fixture
def server(files):
    app = Starlette(routes=routes(None, Settings(extractions_dir=str(files))))  # type: ignore[arg-type]
    with serve(app) as url:
        yield url


def test_conditional_download_does_nothing_when_not_modified(files, local_db, server):
    write_extraction(files, standard_boxes(), "202611250300")
    first = sync(local_db, server + PATH, Filters())
    assert (first.status, first.added) == ("ok", 6)
    with sqlite3.connect(local_db) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["etag"].startswith('"') and meta["last_modified"].endswith("GMT")
    assert meta["generated_at"] == "2026-11-25T02:00:00.000000Z"  # the manifest was found through Link
    before = dump(local_db)
    second = sync(local_db, server + PATH, Filters())
    assert second.status == "not-modified"
    assert dump(local_db) == before
    assert not list(local_db.parent.glob(".localsync-download*")), "temporary download left behind"
    # The next day's extraction is downloaded and applied.
    lines = standard_boxes()[:-1] + [box("nouveau@ch-lyon.mssante.fr", type_="ORG", structure="1690000019")]
    write_extraction(files, lines, "202611260300")
    third = sync(local_db, server + PATH, Filters())
    assert (third.status, third.extraction_ts, third.added, third.removed) == ("ok", "202611260300", 1, 1)
    # New filters: the same extraction must be downloaded again, not answered 304.
    fourth = sync(local_db, server + PATH, Filters.build(types=["ORG"]))
    assert (fourth.status, fourth.removed) == ("ok", 4)


def test_interrupted_download_is_resumed_with_a_range_request(files, local_db, server):
    import httpx

    zip_path = write_extraction(files, standard_boxes() * 200, "202611250300")
    whole = zip_path.read_bytes()
    etag = httpx.head(server + PATH).headers["etag"]
    # What an interrupted run leaves: the first half of the file and its ETag.
    (local_db.parent / ".localsync-download.part").write_bytes(whole[: len(whole) // 2])
    (local_db.parent / ".localsync-download.json").write_text(json.dumps({"url": server + PATH, "etag": etag}))
    report = sync(local_db, server + PATH, Filters())
    assert (report.status, report.lines, report.selected, report.duplicate_lines) == ("ok", 1200, 6, 1194)
    # A stale part (the file changed since) is discarded: If-Range gives the whole new file.
    (local_db.parent / ".localsync-download.part").write_bytes(b"garbage from an older file")
    (local_db.parent / ".localsync-download.json").write_text(json.dumps({"url": server + PATH, "etag": '"old"'}))
    assert sync(local_db, server + PATH, Filters(), force=True).status == "ok"


def test_a_corrupt_download_is_refused_by_its_manifest(files, local_db, server):
    write_extraction(files, standard_boxes(), "202611250300")
    sync(local_db, server + PATH, Filters())
    before = dump(local_db)
    zip_path = write_extraction(files, standard_boxes()[:2], "202611260300")
    manifest = zip_path.with_suffix(".json")
    data = json.loads(manifest.read_text())
    data["zip"]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(data))
    from annuaire.errors import ImportFileError

    with pytest.raises(ImportFileError, match="SHA-256"):
        sync(local_db, server + PATH, Filters())
    assert dump(local_db) == before


def test_unreachable_source_is_a_clear_error_and_changes_nothing(files, local_db):
    sync(local_db, str(write_extraction(files, standard_boxes(), "202611250300")), Filters())
    before = dump(local_db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = f"http://127.0.0.1:{port}{PATH}"
    with pytest.raises(SourceUnavailable, match=f"cannot download {url}"):
        sync(local_db, url, Filters())
    result = CliRunner().invoke(cli, ["local-sync", "--source", url, "--local", str(local_db)])
    assert result.exit_code == 6
    assert "cannot download" in " ".join(result.output.split())
    assert dump(local_db) == before


def test_http_error_is_a_clear_error(local_db, server):
    with pytest.raises(SourceUnavailable, match="answered 404"):
        sync(local_db, server + "/extractions/Extraction_Correspondance_MSSante", Filters())  # none yet


def test_a_killed_run_leaves_the_base_as_it_was(files, local_db):
    """kill -9 in the middle of the write transaction: the base is the previous one, intact."""
    day1 = [box(f"pro{i:06d}@medecin.mssante.fr", id_nat=f"8{i:011d}", last=f"NOM{i}", first="Prénom",
                profession=("10", "Médecin"), dept="69") for i in range(40_000)]
    sync(local_db, str(write_extraction(files / "d1", day1, "202611250300")), Filters())
    before = dump(local_db)
    day2 = [box(f"pro{i:06d}@medecin.mssante.fr", id_nat=f"8{i:011d}", last=f"NOM{i}", first="Prénom",
                profession=("10", "Médecin"), dept="01") for i in range(80_000)]
    day2_zip = write_extraction(files / "d2", day2, "202611260300")
    proc = subprocess.Popen(
        [sys.executable, "-m", "annuaire", "local-sync", "--source", str(day2_zip), "--local", str(local_db)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=dict(os.environ, COLUMNS="200"),
    )
    assert proc.stderr is not None
    killed = False
    for raw in proc.stderr:
        if raw.startswith(b"applying:"):  # inside the transaction, after the first batch
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(30)
    assert killed and proc.returncode == -signal.SIGKILL
    with sqlite3.connect(local_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert dump(local_db) == before
    # The next run starts from the intact base and completes.
    report = sync(local_db, str(day2_zip), Filters())
    assert (report.added, report.updated, report.removed) == (40_000, 40_000, 0)
