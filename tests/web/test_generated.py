"""The search page over a generated fictitious world loaded by the real importer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import and_, false, select, true

from annuaire.store.schema import mailbox, person, structure
from tests.web.conftest import make_settings, serve
from tests.web.pagetools import people, read, structures

PROFESSIONALS = 1500


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from annuaire.synthetic import generate

    out = tmp_path_factory.mktemp("web-world")
    generate(out, professionals=PROFESSIONALS, seed=11)
    return sorted(out.glob("*.zip"))


def unaccented(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def test_generated_people_and_boxes_are_found(store, generated) -> None:  # type: ignore[no-untyped-def]
    from annuaire.referential.importer import import_paths

    import_paths(store, generated)
    with store.read() as conn:
        holders = conn.execute(
            select(person.c.id_nat, person.c.first_name, person.c.last_name, mailbox.c.address)
            .join(mailbox, mailbox.c.holder == person.c.id_nat)
            .where(person.c.active == true(), mailbox.c.active == true(), mailbox.c.liste_rouge == false(),
                   mailbox.c.type == "PER")
            .order_by(person.c.id)
        ).all()
        orgs = conn.execute(
            select(structure.c.tech_id, mailbox.c.address)
            .join(mailbox, and_(mailbox.c.structure_idnat == structure.c.idnat, mailbox.c.type == "ORG"))
            .where(structure.c.active == true(), mailbox.c.active == true())
            .order_by(structure.c.id)
        ).all()
    assert len(holders) > 50 and orgs
    sample = random.Random(5).sample(holders, 8)
    for site in serve(store, make_settings()):
        for id_nat, first, last, address in sample:
            for q in (f"{first} {last}", unaccented(f"{last} {first}").lower()):
                ids = people(site.get("/", q=q).text)
                assert id_nat in ids, (q, ids)
            assert id_nat in people(site.get("/", q=address).text), address
            page = read(site.get(f"/pro/{id_nat}").text)
            assert address in page.copy_buttons
        tech_id, address = orgs[0]
        assert tech_id in structures(site.get("/", q=address).text)
        assert address in read(site.get(f"/structure/{tech_id}").text).copy_buttons

