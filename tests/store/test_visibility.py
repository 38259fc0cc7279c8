"""The one visibility rule: its SQL form (`visible`) and its reasons (`reasons`) agree, on both engines."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from annuaire.store.schema import mailbox
from annuaire.store.visibility import (
    REASONS,
    hidden_boxes,
    reasons,
    state_columns,
    visible,
)
from tests.fhir.fhir_data import World

D = "vis.mssante.fr"


def _world(store):  # type: ignore[no-untyped-def]
    """Holders and structures in every state a box can point to."""
    w = World(store)
    w.person("10000000001", "ACTIF", "Anne")
    w.person("10000000002", "PARTI", "Paul", active=False)
    w.structure("F990000001", "SITE OUVERT")
    w.structure("F990000002", "SITE FERME", active=False)
    w.structure("F990000003", "SITE D UNE EJ", finess_ej="990000099")  # its legal entity: 1990000099
    w.structure("F990000004", "SITE FERME D UNE EJ", finess_ej="990000088", active=False)
    return w


HOLDERS = {"active": "810000000001", "inactive": "810000000002", "unknown": "810000000009"}
STRUCTURES = {"open": "1990000001", "closed": "1990000002", "unknown": "1990000009",
              "legal-open": "1990000099", "legal-closed": "1990000088"}


def test_sql_rule_and_reasons_agree_on_every_combination(store) -> None:  # type: ignore[no-untyped-def]
    w = _world(store)
    expected: dict[str, list[str]] = {}
    n = 0
    for kind, active, rouge in itertools.product(("PER", "CAB", "ORG", "APP"), (True, False), (False, True)):
        targets = HOLDERS if kind in ("PER", "CAB") else STRUCTURES
        for state, ref in targets.items():
            n += 1
            address = f"b{n}.{kind.lower()}.{state}@{D}"
            links = {"holder": ref} if kind in ("PER", "CAB") else {"structure_idnat": ref}
            w.mailbox(address, kind, active=active, liste_rouge=rouge, **links)
            want = [] if active else ["DELETED"]
            if rouge:
                want.append("LISTE_ROUGE")
            want += {"inactive": ["HOLDER_INACTIVE"], "unknown": ["HOLDER_UNKNOWN"], "closed": ["STRUCTURE_CLOSED"],
                     "legal-closed": ["STRUCTURE_CLOSED"]}.get(state, [])
            if kind in ("ORG", "APP") and state == "unknown":
                want = [r for r in want if r != "HOLDER_UNKNOWN"] + ["STRUCTURE_UNKNOWN"]
            expected[address] = sorted(want, key=list(REASONS).index)
    with store.read() as conn:
        rows = conn.execute(select(mailbox.c.address, visible().label("shown"), *state_columns())).all()
        shown = set(conn.execute(select(mailbox.c.address).where(visible())).scalars())
        hidden = {h.address: h.reasons for h in hidden_boxes(conn, domains=[D])}
    assert len(rows) == len(expected) == n
    for row in rows:
        assert reasons(row) == expected[row.address], row.address
        assert bool(row.shown) == (expected[row.address] == []), row.address
    assert shown == {a for a, r in expected.items() if not r}
    # hidden_boxes: the active boxes not shown, with their reasons (a deleted box is not "hidden")
    assert hidden == {a: r for a, r in expected.items() if r and "DELETED" not in r}
    # a PER box of a holder who is active is shown whatever its structure; an EJ box while one site is open
    assert f"b1.per.active@{D}" in shown
    assert [a for a in shown if ".legal-open@" in a] and not [a for a in shown if ".legal-closed@" in a]


def test_a_hidden_box_comes_back_with_its_holder(store) -> None:  # type: ignore[no-untyped-def]
    from annuaire.store.schema import person

    w = _world(store)
    w.mailbox(f"paul.parti@{D}", "PER", holder=HOLDERS["inactive"])
    with store.read() as conn:
        assert [h.reasons for h in hidden_boxes(conn)] == [["HOLDER_INACTIVE"]]
    w.change(person, "person", "id_nat", HOLDERS["inactive"], active=True)
    with store.read() as conn:
        assert list(hidden_boxes(conn)) == []
        assert conn.execute(select(mailbox.c.address).where(visible())).scalars().all() == [f"paul.parti@{D}"]
