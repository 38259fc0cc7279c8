"""`annuaire publish` against a live server: exit codes scripts can tell apart, findings
numbered by the lines of the operator's own file, a readable table (and --json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from annuaire.cli import cli
from annuaire.config import Settings
from annuaire.mailboxes.client import json_item_lines
from tests.mailboxes.mailbox_fixtures import (
    CAMILLE,
    publication_app,
    running,
    seed_referential,
)

D = "ch-exemple.mssante.fr"
UNKNOWN = "819999999999"


def run(store: Any, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["--db", store.url, *args], catch_exceptions=False)


@pytest.fixture
def server(store: Any) -> Any:
    seed_referential(store)
    token = run(store, "operator", "add", "CH Exemple", "--domain", D).stdout.strip()
    with running(publication_app(store, Settings())) as url:
        yield lambda *args: run(store, "publish", D, *map(str, args), "--server", url, "--token", token)


def test_exit_codes_and_csv_line_numbers(server: Any, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(f"Type de BAL|Adresse BAL|Identification nationale PP\nPER|camille.martin@{D}|{CAMILLE}\n")
    r = server(good)
    assert r.exit_code == 0, r.output
    assert "created" in r.stderr and "rejected" in r.stderr  # the summary table's columns
    # Line 1 header, line 3 blank, line 4 rejected: the report says 4, as the operator's editor does.
    bad = tmp_path / "bad.csv"
    bad.write_text("Type de BAL|Adresse BAL|Identification nationale PP\r\n"
                   f"PER|camille.martin@{D}|{CAMILLE}\r\n\r\nPER|inconnu@{D}|{UNKNOWN}\r\n")
    r = server(bad, "--dry-run")
    assert r.exit_code == 7, r.output
    assert "Rejected" in r.stderr and "HOLDER_UNKNOWN" in r.stderr and "exit code 7" in r.stderr
    row = next(line for line in r.stderr.splitlines() if f"inconnu@{D}" in line)
    assert row.split("│")[1].strip() == "4" and row.split("│")[2].strip() == "2", row  # line 4, item 2
    r = server(bad, "--json")
    assert r.exit_code == 7
    report = orjson.loads(r.stdout)  # stdout is the JSON alone: the message goes to stderr
    assert [(f["line"], f["index"], f["code"]) for f in report["rejected"]] == [(4, 1, "HOLDER_UNKNOWN")]
    # A list refused whole (2) and a server nobody answers on (1) are other codes.
    broken = tmp_path / "broken.csv"
    broken.write_text("Adresse|Type\nx|y\n")
    assert server(broken).exit_code == 2
    r = run_unreachable(good)
    assert r.exit_code == 1 and "cannot reach" in r.stderr


def run_unreachable(path: Path) -> Result:
    return CliRunner().invoke(cli, ["publish", D, str(path), "--server", "http://127.0.0.1:9", "--token", "t"],
                              catch_exceptions=False)


def test_json_file_line_numbers(server: Any, tmp_path: Path) -> None:
    text = (
        '{\n'
        '  "mailboxes": [\n'
        f'    {{"address": "camille.martin@{D}", "type": "PER", "holder": "{CAMILLE}"}},\n'
        '    {\n'
        f'      "address": "inconnu@{D}",\n'
        f'      "type": "PER", "holder": "{UNKNOWN}"\n'
        '    },\n'
        f'    {{"address": "Accueil@{D}", "type": "ORG", "structure": "1990000019"}}\n'
        '  ]\n'
        '}\n'
    )
    path = tmp_path / "boxes.json"
    path.write_text(text)
    assert json_item_lines(text.encode()) == [3, 4, 8]
    r = server(path, "--json")
    assert r.exit_code == 7, r.output
    report = orjson.loads(r.stdout)
    assert [(f["line"], f["code"]) for f in report["rejected"]] == [(4, "HOLDER_UNKNOWN")]
    assert [(f["line"], f["code"]) for f in report["warnings"] if f["code"] == "ADDRESS_LOWERCASED"] == [
        (8, "ADDRESS_LOWERCASED")]
    r = server(path, "--dry-run")
    row = next(line for line in r.stderr.splitlines() if f"inconnu@{D}" in line)
    assert row.split("│")[1].strip() == "4", row
