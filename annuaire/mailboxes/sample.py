"""A ready-to-publish sample list for the demo: an operator, a domain and valid boxes.

`make demo` calls `prepare_demo` after the import so that the person trying
the system can run the printed `annuaire publish …` command at once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from annuaire.errors import NotFound
from annuaire.mailboxes import operators
from annuaire.store import Store
from annuaire.store.keys import search_key
from annuaire.store.schema import activity, person, structure

DEMO_OPERATOR = "Opérateur de démonstration"
DEMO_DOMAIN = "demo-operateur.mssante.fr"


def _local(first: str | None, last: str | None) -> str:
    return ".".join(search_key(part).replace(" ", "-") for part in (first, last) if part)


def sample_list(store: Store, domain: str = DEMO_DOMAIN, people: int = 3) -> list[dict[str, Any]]:
    """PER boxes of a few active professionals at one structure, and an ORG box of that structure."""
    query = (
        select(person.c.id_nat, person.c.first_name, person.c.last_name, structure.c.idnat)
        .join(activity, activity.c.person_id == person.c.id)
        .join(structure, structure.c.id == activity.c.structure_id)
        .where(person.c.active, activity.c.active, structure.c.active, structure.c.idnat.is_not(None))
        .order_by(person.c.id)
        .limit(1000)
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
    if not rows:
        raise NotFound("no active professional in the store: import a referential first (annuaire import …)")
    site = Counter(r[3] for r in rows).most_common(1)[0][0]
    chosen = list({r[0]: r for r in rows if r[3] == site}.values())[:people]
    boxes: list[dict[str, Any]] = [
        {"address": f"{_local(first, last)}@{domain}", "type": "PER", "holder": id_nat, "structure": site}
        for id_nat, first, last, _ in chosen
    ]
    boxes.append({"address": f"secretariat@{domain}", "type": "ORG", "structure": site, "service": "Secrétariat",
                  "description": "Secrétariat (boîte de démonstration)"})
    return boxes


def prepare_demo(store: Store, folder: Path, server: str) -> dict[str, str]:
    """Register (or re-key) the demo operator, write its sample list; returns what to print."""
    try:
        operators.add_domains(store, DEMO_OPERATOR, [DEMO_DOMAIN])
        token = operators.rotate_token(store, DEMO_OPERATOR)
    except NotFound:
        _, token = operators.add_operator(store, DEMO_OPERATOR, [DEMO_DOMAIN])
    path = Path(folder) / "sample-mailboxes.json"
    path.write_bytes(orjson.dumps({"mailboxes": sample_list(store)}, option=orjson.OPT_INDENT_2))
    command = f"annuaire publish {DEMO_DOMAIN} {path} --server {server} --token {token}"
    return {"operator": DEMO_OPERATOR, "domain": DEMO_DOMAIN, "token": token, "file": str(path), "command": command}
