"""Every publication rule, through the real HTTP API, on SQLite and PostgreSQL.

Each case publishes a list to a.mssante.fr and checks that the line is
rejected (or warned about) with the rule's stable code and both messages.
`test_every_rule_is_tested` fails when a rule is added without a case here.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from annuaire.config import Settings
from annuaire.mailboxes.rules import RULES
from annuaire.store.clock import utc_now
from annuaire.store.schema import mailbox
from tests.mailboxes.mailbox_fixtures import (
    ALIX,
    CAMILLE,
    HUGO,
    JEAN_PIERRE,
    LUCIE,
    Env,
    make_env,
    org,
    per,
)

D = "a.mssante.fr"

# code -> (list of boxes, index of the line expected to carry the code)
REJECTIONS: dict[str, list[tuple[list[dict], int]]] = {
    "ADDRESS_MISSING": [([{"type": "PER", "holder": CAMILLE}], 0), ([per("x") | {"address": "  "}], 0)],
    "ADDRESS_SYNTAX": [([per("x") | {"address": "camille.martin.a.mssante.fr"}], 0),
                       ([per("x") | {"address": f"a@b@{D}"}], 0), ([per("x") | {"address": f"@{D}"}], 0)],
    "ADDRESS_LOCAL_PART": [([per("camille martin")], 0), ([per(".camille")], 0), ([per("camille.")], 0),
                           ([per("ca..mille")], 0), ([per("camillé")], 0), ([per("camille+x")], 0)],
    "ADDRESS_TOO_LONG": [([per("c" * 65)], 0),
                         ([per("x") | {"address": "x@" + ".".join(["a" * 60] * 5) + ".fr"}], 0)],
    "ADDRESS_DOMAIN_SYNTAX": [([per("x", domain="-bad.mssante.fr")], 0), ([per("x", domain="localhost")], 0)],
    "ADDRESS_DOMAIN_MISMATCH": [([per("camille.martin"), per("camille.martin", domain="b.mssante.fr")], 1)],
    "DUPLICATE_ADDRESS": [([per("camille.martin"), per("camille.martin", rank=2)], 0),
                          ([per("camille.martin"), per("camille.martin")], 1),
                          ([per("camille.martin"), per("Camille.Martin")], 1)],
    "TYPE_UNKNOWN": [([per("x") | {"type": "XYZ"}], 0), ([per("x") | {"type": None}], 0), ([per("x") | {"type": 5}], 0)],
    "HOLDER_MISSING": [([per("x") | {"holder": None}], 0), ([{"address": f"cab@{D}", "type": "CAB"}], 0)],
    "HOLDER_SYNTAX": [([per("x", holder="81234")], 0), ([per("x", holder="912345678901")], 0)],
    "HOLDER_NOT_APPLICABLE": [([org("accueil", holder=CAMILLE)], 0)],
    "HOLDER_UNKNOWN": [([per("x", holder="819999999999")], 0)],
    "HOLDER_INACTIVE": [([per("lucie.bernard", holder=LUCIE)], 0)],
    "STRUCTURE_MISSING": [([org("accueil") | {"structure": None}], 0), ([{"address": f"app@{D}", "type": "APP"}], 0)],
    "STRUCTURE_SYNTAX": [([org("accueil", "??")], 0), ([org("accueil", "X12")], 0)],
    "STRUCTURE_UNKNOWN": [([org("accueil", "1999999999")], 0), ([org("accueil", "F999999999")], 0),
                          ([per("camille.martin", structure="3999")], 0)],
    "STRUCTURE_INACTIVE": [([org("accueil", "410000000001")], 0), ([org("accueil", "R10000000001")], 0)],
    "FIELD_NOT_TEXT": [([org("accueil", service=5)], 0), ([org("accueil", description=["x"])], 0),
                       ([per("x") | {"address": 42}], 0), ([per("x", holder=8)], 0)],
    "FIELD_BAD_CHARACTER": [([org("accueil", service="a|b")], 0), ([org("accueil", description="a\nb")], 0)],
    "FIELD_TOO_LONG": [([org("accueil", description="d" * 501)], 0), ([org("accueil", service="s" * 301)], 0),
                       ([org("accueil", responsible="r" * 301)], 0)],
    "FIELD_NOT_BOOLEAN": [([per("camille.martin", liste_rouge="maybe")], 0),
                          ([per("camille.martin", dematerialisation=2)], 0)],
    "RANK_INVALID": [([per("camille.martin", rank=0)], 0), ([per("camille.martin", rank="x")], 0),
                     ([per("camille.martin", rank=True)], 0), ([per("camille.martin", rank=1000)], 0)],
}

WARNINGS: dict[str, list[tuple[list[dict], int]]] = {
    "ADDRESS_LOWERCASED": [([per("x") | {"address": "Camille.Martin@A.MSSANTE.FR"}], 0)],
    "FIELD_NOT_APPLICABLE": [([per("camille.martin", service="Cardiologie")], 0),
                             ([{"address": f"cab.durand@{D}", "type": "CAB", "holder": JEAN_PIERRE, "service": "x"}], 0)],
    "NAMING_PER_UNRELATED": [([per("docteur.x")], 0)],
    "NAMING_ORG_LIKE_PERSON": [([org("camille.martin")], 0), ([org("jean-pierre.durand")], 0)],
    "HOLDER_LEFT_STRUCTURE": [([per("camille.martin", structure="312345678900011")], 0)],
    "HOLDER_SEVERAL_PER": [([per("camille.martin"), per("c.martin")], 0)],
}

# Rules exercised elsewhere: store-level (test_store_level_rules below), or the national file only.
ELSEWHERE = {"ADDRESS_IN_OTHER_DOMAIN", "TYPE_IMMUTABLE", "PROFESSION_NOT_AUTHORISED", "DUPLICATE_LINE",
             "BOX_HIDDEN"}  # (test_referential_changes_are_seen_at_once)


def _cases(table: dict) -> list:
    return [pytest.param(code, boxes, index, id=f"{code}-{n}") for code, cases in table.items()
            for n, (boxes, index) in enumerate(cases)]


def _find(items: list[dict], code: str, index: int) -> dict:
    for item in items:
        if item["code"] == code and item["index"] == index:
            return item
    raise AssertionError(f"no {code} at index {index} in {items}")


def test_every_rule_is_tested() -> None:
    assert set(RULES) == set(REJECTIONS) | set(WARNINGS) | ELSEWHERE
    for code in REJECTIONS:
        assert not RULES[code].warning, code
    for code in WARNINGS:
        assert RULES[code].warning, code


@pytest.mark.parametrize("code,boxes,index", _cases(REJECTIONS))
def test_rejection(env: Env, code: str, boxes: list[dict], index: int) -> None:
    r = env.put(D, boxes)
    assert r.status_code == 200, r.text
    report = r.json()
    item = _find(report["rejected"], code, index)
    assert item["message"] and item["message_en"] and item["message"] != item["message_en"]
    # A rejected line is applied nowhere.
    assert report["created"] == len(boxes) - len({i["index"] for i in report["rejected"]})
    assert len(env.current(D)) == report["created"]


@pytest.mark.parametrize("code,boxes,index", _cases(WARNINGS))
def test_warning(env: Env, code: str, boxes: list[dict], index: int) -> None:
    r = env.put(D, boxes)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rejected"] == []
    item = _find(report["warnings"], code, index)
    assert item["message"] and item["message_en"]
    assert report["created"] == len(boxes)


def test_good_lines_give_no_warning(env: Env) -> None:
    boxes = [
        per("camille.martin", structure="1990000019", rank=1, dematerialisation=True),
        per("alix.petit", holder=ALIX),  # ADELI holder
        {"address": f"cabinet.durand@{D}", "type": "CAB", "holder": JEAN_PIERRE, "structure": "C12345678900011",
         "description": "Cabinet du Dr Durand"},
        org("secretariat.cardio", service="Cardiologie", description="Secrétariat", responsible="Équipe SI"),
        {"address": f"dmp-robot@{D}", "type": "APP", "structure": "F990000019", "liste_rouge": True},
    ]
    report = env.put(D, boxes).json()
    assert (report["created"], report["rejected"], report["warnings"]) == (5, [], [])


def test_structure_forms_are_stored_as_national_id(env: Env) -> None:
    """Technical ids (F…/C…/R…) and national ids (1…/3…) name the same structure."""
    boxes = [org("a1", "F990000019"), org("a2", "1990000019"), org("a3", "C12345678900011"),
             org("a4", "1880000018")]  # known only by its technical id F880000018
    report = env.put(D, boxes).json()
    assert report["rejected"] == []
    current = env.current(D)
    assert [current[f"a{i}@{D}"]["structure"] for i in range(1, 5)] == [
        "1990000019", "1990000019", "312345678900011", "1880000018"]
    # Same structure given in the other form: unchanged.
    again = env.put(D, [org("a1", "1990000019"), org("a2", "F990000019"), org("a3", "312345678900011"),
                        org("a4", "F880000018")]).json()
    assert again["unchanged"] == 4


def test_profession_not_authorised(store: Any) -> None:
    with make_env(store, Settings(authorised_professions="10,21")) as env:
        report = env.put(D, [per("hugo.lefevre", holder=HUGO), per("camille.martin")]).json()
        assert [(i["code"], i["index"]) for i in report["rejected"]] == [("PROFESSION_NOT_AUTHORISED", 0)]
        assert report["created"] == 1


def test_type_immutable(env: Env) -> None:
    assert env.put(D, [per("camille.martin")]).json()["created"] == 1
    report = env.put(D, [org("camille.martin")]).json()
    assert [i["code"] for i in report["rejected"]] == ["TYPE_IMMUTABLE"]
    assert (report["deleted"], report["created"]) == (0, 0)
    assert env.current(D)[f"camille.martin@{D}"]["type"] == "PER"  # kept as it was, not deleted
    # Also after deletion: the address keeps its type forever.
    env.put(D, [])
    report = env.put(D, [org("camille.martin")]).json()
    assert [i["code"] for i in report["rejected"]] == ["TYPE_IMMUTABLE"]
    assert env.current(D) == {}


def test_address_in_other_domain(env: Env) -> None:
    """Impossible through the API (the domain is part of the address), but stored data may be odd."""
    with env.store.write() as conn:
        conn.execute(insert(mailbox).values(
            address=f"camille.martin@{D}", domain="b.mssante.fr", type="PER", holder=CAMILLE, liste_rouge=False,
            source="operator", active=True, version=1, last_updated=utc_now(), digest=0,
        ))
    report = env.put(D, [per("camille.martin"), per("c.martin")]).json()
    assert [(i["code"], i["index"]) for i in report["rejected"]] == [("ADDRESS_IN_OTHER_DOMAIN", 0)]
    assert "b.mssante.fr" in report["rejected"][0]["message_en"]
    assert report["created"] == 1
    with env.store.read() as conn:
        assert conn.execute(select(mailbox.c.domain).where(mailbox.c.address == f"camille.martin@{D}")).scalar() == "b.mssante.fr"


def test_every_rule_is_documented() -> None:
    """docs/publication.md lists every rule code (docs that cannot drift)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "publication.md").read_text()
    missing = [code for code in RULES if f"| {code} |" not in doc]
    assert missing == []


def test_referential_changes_are_seen_at_once(env: Env) -> None:
    """Referential lookups are cached between publications, until the referential changes."""
    from sqlalchemy import update

    from annuaire.store.schema import person

    assert env.put(D, [per("camille.martin")]).json()["created"] == 1
    try:
        with env.store.write() as conn:  # what a referential import does: the change bumps last_updated
            conn.execute(update(person).where(person.c.id_nat == CAMILLE).values(active=False, last_updated=utc_now()))
        report = env.put(D, [per("camille.martin")]).json()
        assert [i["code"] for i in report["rejected"]] == ["HOLDER_INACTIVE"]
        # The rejected line leaves the existing box in place, hidden from the public: the operator is told why.
        hidden = _find(report["warnings"], "BOX_HIDDEN", 0)
        assert hidden["address"] == f"camille.martin@{D}" and "inactif" in hidden["message"]
        assert "inactive" in hidden["message_en"]
        assert _find(env.put(D, [per("camille.martin")], params={"dry_run": "true"}).json()["warnings"], "BOX_HIDDEN", 0)
    finally:
        with env.store.write() as conn:
            conn.execute(update(person).where(person.c.id_nat == CAMILLE).values(active=True, last_updated=utc_now()))
    assert env.put(D, [per("camille.martin")]).json()["unchanged"] == 1
