"""The main job on the embedded default: `make demo`.

Generates a fictitious world (if not already there), imports it into an
SQLite store, prints the counts, registers a demonstration operator with a
sample publication, then starts every interface with `annuaire serve`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

DEMO_OPERATOR = "Opérateur de démonstration"
DEMO_DOMAIN = "demo.mssante.fr"


def annuaire(*args: str, env: dict[str, str], capture: bool = False) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "annuaire", *args], check=True, env=env, text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return proc.stdout or ""


def sample_publication(db_url: str, path: Path) -> None:
    """A small complete list for the demo domain: one PER and one ORG box of fictitious records."""
    from annuaire.store import open_store
    from annuaire.store.keys import search_key
    from annuaire.store.schema import person, structure

    store = open_store(db_url)
    with store.read() as conn:
        who = conn.execute(
            select(person.c.id_nat, person.c.first_name, person.c.last_name)
            .where(person.c.active, person.c.profession_code == "10").limit(1)
        ).one()
        where = conn.execute(
            select(structure.c.idnat, structure.c.name).where(structure.c.active, structure.c.finess != "").limit(1)
        ).one()
    store.dispose()
    local = search_key(f"{who.first_name} {who.last_name}").replace(" ", ".")
    boxes = [
        {"address": f"{local}@{DEMO_DOMAIN}", "type": "PER", "holder": who.id_nat, "dematerialisation": True},
        {"address": f"secretariat@{DEMO_DOMAIN}", "type": "ORG", "structure": where.idnat,
         "service": "Secrétariat", "description": f"Secrétariat - {where.name}", "responsible": "dsi@example.invalid"},
    ]
    path.write_text(json.dumps({"mailboxes": boxes}, ensure_ascii=False, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default="demo", type=Path)
    parser.add_argument("--professionals", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--ldap-port", type=int, default=3389)
    parser.add_argument("--no-serve", action="store_true", help="Stop before starting the servers.")
    args = parser.parse_args(argv)

    folder = args.dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{folder / 'annuaire.sqlite'}"
    env = dict(os.environ, ANNUAIRE_DB=db_url, ANNUAIRE_EXTRACTIONS_DIR=str(folder / "extractions"))
    data = folder / "data"
    if not any(data.glob("PS_LibreAcces_*.zip")):
        annuaire("generate", str(data), "--professionals", str(args.professionals), "--seed", str(args.seed), env=env)
    annuaire("import", *sorted(str(p) for p in data.glob("*.zip")), env=env)
    annuaire("stats", env=env)

    token_file = folder / "operator-token.txt"
    if not token_file.exists():
        token = annuaire("operator", "add", DEMO_OPERATOR, "--domain", DEMO_DOMAIN, env=env, capture=True).strip()
        token_file.write_text(token + "\n")
    sample = folder / "sample-publication.json"
    sample_publication(db_url, sample)
    if args.no_serve:
        return
    base = f"http://127.0.0.1:{args.http_port}"
    print(
        f"\nTo publish the sample list of {DEMO_DOMAIN} while the server runs, in another terminal:\n"
        f"  .venv/bin/annuaire publish {DEMO_DOMAIN} {sample} --server {base} --token $(cat {token_file})\n"
        f"LDAP address book: ldapsearch -x -H ldap://127.0.0.1:{args.ldap_port} -b o=annuaire-sante,c=fr '(sn=mar*)'\n",
        flush=True,
    )
    annuaire("serve", "--http-port", str(args.http_port), "--ldap-port", str(args.ldap_port), env=env)


if __name__ == "__main__":
    main()
