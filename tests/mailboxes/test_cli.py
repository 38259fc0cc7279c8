"""The mailbox commands: operator management, whitelist, publish (against a live server), quality."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import orjson
from click.testing import CliRunner, Result
from sqlalchemy import update

from annuaire.cli import cli
from annuaire.config import Settings
from annuaire.mailboxes.operators import WHITELIST_NAMESPACE
from annuaire.store.clock import utc_now
from annuaire.store.schema import person
from tests.mailboxes.mailbox_fixtures import (
    ALIX,
    CAMILLE,
    JEAN_PIERRE,
    org,
    per,
    publication_app,
    running,
    seed_referential,
)

TOKEN = re.compile(r"^ann_\d+_[A-Za-z0-9_-]{20,}$")
D = "ch-exemple.mssante.fr"


def run(store: Any, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["--db", store.url, *args], catch_exceptions=False)


def test_operator_commands(store: Any) -> None:
    r = run(store, "operator", "add", "CH Exemple", "--domain", D, "--domain", "Labo.CH-Exemple.mssante.fr",
            "--cert-dn", "CN=mss.ch-exemple.test,O=CH Exemple,C=FR", "--contact", "dsi@ch-exemple.test")
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert TOKEN.match(token) and token not in r.stderr
    assert "shown once" in r.stderr
    # Refusals, each with a message and the class's exit code.
    r = run(store, "operator", "add", "CH Exemple", "--domain", "autre.mssante.fr")
    assert r.exit_code == 5 and "already exists" in r.stderr
    r = run(store, "operator", "add", "Autre", "--domain", D)
    assert r.exit_code == 5 and "already belongs to operator 'CH Exemple'" in r.stderr
    r = run(store, "operator", "add", "Autre", "--domain", "pas un domaine")
    assert r.exit_code == 2 and "not a valid mail domain" in r.stderr
    r = run(store, "operator", "token", "Inconnu")
    assert r.exit_code == 3 and "CH Exemple" in r.stderr  # lists the known operators
    # Listing.
    r = run(store, "operator", "list", "--json")
    ops = orjson.loads(r.stdout)
    assert [(o["name"], sorted(o["domains"])) for o in ops] == [("CH Exemple", [D, "labo.ch-exemple.mssante.fr"])]
    assert "token" not in r.stdout.lower()
    assert "CH Exemple" in run(store, "operator", "list").stderr
    # Domains.
    assert run(store, "operator", "add", "Clinique", "--domain", "clinique.mssante.fr").exit_code == 0
    r = run(store, "operator", "domain", "add", "Clinique", "labo.ch-exemple.mssante.fr")
    assert r.exit_code == 5
    assert run(store, "operator", "domain", "remove", "CH Exemple", "labo.ch-exemple.mssante.fr").exit_code == 0
    assert run(store, "operator", "domain", "add", "Clinique", "labo.ch-exemple.mssante.fr").exit_code == 0
    r = run(store, "operator", "domain", "remove", "CH Exemple", "clinique.mssante.fr")
    assert r.exit_code == 3 and "does not belong" in r.stderr
    # Whitelist XML in the national layout.
    r = run(store, "whitelist")
    root = ET.fromstring(r.stdout_bytes)
    ns = {"w": WHITELIST_NAMESPACE}
    assert root.tag == f"{{{WHITELIST_NAMESPACE}}}ListeBlancheMSSante"
    assert root.find("w:DateDeGeneration", ns).text.endswith("Z")
    domains = {d.find("w:Nom", ns).text: d for d in root.findall("w:ListeDomaines/w:Domaine", ns)}
    assert set(domains) == {D, "clinique.mssante.fr", "labo.ch-exemple.mssante.fr"}
    assert domains[D].find("w:DNCertificatOperateur", ns).text == "CN=mss.ch-exemple.test,O=CH Exemple,C=FR"
    assert domains[D].find("w:ResponsableContact", ns).text == "dsi@ch-exemple.test"
    for child in ("Description", "SupportContact", "DateMAJ"):
        assert domains[D].find(f"w:{child}", ns) is not None


def test_publish_command(store: Any, tmp_path: Path) -> None:
    seed_referential(store)
    token = run(store, "operator", "add", "CH Exemple", "--domain", D).stdout.strip()
    boxes = [per("camille.martin", domain=D), org("accueil", domain=D), per("x", holder="819999999999", domain=D)]
    json_file = tmp_path / "boxes.json"
    json_file.write_bytes(orjson.dumps({"mailboxes": boxes}))
    csv_file = tmp_path / "boxes.csv"
    csv_file.write_text(f"Type de BAL|Adresse BAL|Identification nationale PP\nPER|camille.martin@{D}|{CAMILLE}\n")
    with running(publication_app(store, Settings())) as url:
        r = run(store, "publish", D, str(json_file), "--server", url, "--token", token, "--dry-run")
        assert r.exit_code == 7, r.output  # a line rejected (tests/mailboxes/test_publish_cli.py)
        assert "Dry run" in r.stderr and "HOLDER_UNKNOWN" in r.stderr
        r = run(store, "publish", D, str(json_file), "--server", url, "--token", token, "--json")
        assert r.exit_code == 7
        report = orjson.loads(r.stdout)
        assert (report["created"], report["dry_run"], len(report["rejected"])) == (2, False, 1)
        r = run(store, "publish", D, str(csv_file), "--server", url, "--token", token, "--json")
        assert orjson.loads(r.stdout)["deleted"] == 1
        # Errors come back as messages with exit codes.
        r = run(store, "publish", D, str(csv_file), "--server", url, "--token", "ann_1_wrong")
        assert r.exit_code == 4 and "401" in r.stderr and "invalid API token" in r.stderr
        r = run(store, "publish", "autre.mssante.fr", str(csv_file), "--server", url, "--token", token)
        assert r.exit_code == 4 and "403" in r.stderr
        # Rotation: the old token stops working at once.
        new = run(store, "operator", "token", "CH Exemple").stdout.strip()
        assert TOKEN.match(new) and new != token
        assert run(store, "publish", D, str(csv_file), "--server", url, "--token", token).exit_code == 4
        assert run(store, "publish", D, str(csv_file), "--server", url, "--token", new).exit_code == 0
    r = run(store, "publish", D, str(csv_file), "--server", "http://127.0.0.1:9", "--token", new)
    assert r.exit_code == 1 and "cannot reach" in r.stderr


def test_quality_command(store: Any) -> None:
    seed_referential(store)
    run(store, "operator", "add", "CH Exemple", "--domain", D, "--domain", "vieux.mssante.fr")
    token = run(store, "operator", "token", "CH Exemple").stdout.strip()
    boxes = [
        per("camille.martin", domain=D),  # the holder will leave
        per("alix.petit", holder=ALIX, domain=D, structure="1990000019"),  # Alix works elsewhere
        per("docteur.x", holder=JEAN_PIERRE, domain=D),  # naming
        per("jp.durand", holder=JEAN_PIERRE, domain=D),  # second PER of the same holder
        org("camille.martin.sec", domain=D),
        org("jean-pierre.durand", domain=D, liste_rouge=True),  # ORG named like a person, liste rouge
    ]
    with running(publication_app(store, Settings())) as url:
        import httpx

        r = httpx.put(f"{url}/api/v1/domains/{D}/mailboxes", json={"mailboxes": boxes},
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["rejected"] == []
    with store.write() as conn:
        conn.execute(update(person).where(person.c.id_nat == CAMILLE).values(active=False, last_updated=utc_now()))
    r = run(store, "quality", "--json")
    report = {e["domain"]: e for e in orjson.loads(r.stdout)}
    ch = report[D]
    assert ch["operator"] == "CH Exemple" and ch["mailboxes"] == 6 and not ch["stale"]
    assert {(d["address"], d["reason"]) for d in ch["departed"]} == {
        (f"camille.martin@{D}", "inactive holder"), (f"alix.petit@{D}", "no current activity in 1990000019")}
    assert {(n["address"], n["code"]) for n in ch["naming"]} == {
        (f"docteur.x@{D}", "NAMING_PER_UNRELATED"), (f"jean-pierre.durand@{D}", "NAMING_ORG_LIKE_PERSON")}
    assert ch["holder_duplicates"] == [{"holder": JEAN_PIERRE, "addresses": [f"docteur.x@{D}", f"jp.durand@{D}"]}]
    assert ch["liste_rouge"] == [f"jean-pierre.durand@{D}"]
    assert report["vieux.mssante.fr"]["stale"] and report["vieux.mssante.fr"]["last_published"] is None
    table = run(store, "quality", "--operator", "CH Exemple").stderr
    assert D in table and "vieux.mssante.fr" in table and "stale" in table and "docteur.x" in table
    assert run(store, "quality", "--operator", "Personne").exit_code == 3
