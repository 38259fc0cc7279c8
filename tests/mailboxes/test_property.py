"""Property: for any previous state and any list, after publication the domain's published
set is exactly the list's valid lines plus the rejected lines' existing boxes, and other
domains are unchanged. Validity is decided here by an independent oracle, not by the report.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from annuaire.store.schema import mailbox
from tests.mailboxes.mailbox_fixtures import (
    ALIX,
    CAMILLE,
    JEAN_PIERRE,
    LUCIE,
    Env,
    org,
    per,
)

A, B = "a.mssante.fr", "b.mssante.fr"
LOCALS = ["camille.martin", "c.martin", "accueil", "secretariat", "jp.durand", "alix.petit", "robot", "cab"]
GOOD_HOLDERS = [CAMILLE, JEAN_PIERRE, ALIX]
BAD_HOLDERS = ["819999999999", LUCIE, "81"]  # unknown, inactive, malformed
GOOD_STRUCTURES = {"1990000019": "1990000019", "F990000019": "1990000019", "312345678900011": "312345678900011"}
BAD_STRUCTURES = ["1999999999", "R10000000001", "??"]  # unknown, closed, malformed

box = st.builds(
    lambda local, kind, holder, structure, service, rank: (
        per(local, holder=holder, structure=structure if structure in GOOD_STRUCTURES else None, rank=rank)
        if kind == "PER" else org(local, structure, service=service, rank=rank)
    ),
    st.sampled_from(LOCALS),
    st.sampled_from(["PER", "ORG"]),
    st.sampled_from(GOOD_HOLDERS + BAD_HOLDERS),
    st.sampled_from(list(GOOD_STRUCTURES) + BAD_STRUCTURES),
    st.sampled_from([None, "Accueil", "Cardiologie"]),
    st.sampled_from([None, 1, 2]),
)
lists = st.lists(box, max_size=10)


def _valid(line: dict, copies: int, stored_type: str | None) -> bool:
    if copies > 1 or (stored_type is not None and stored_type != line["type"]):
        return False
    if line["type"] == "PER":
        return line["holder"] in GOOD_HOLDERS
    return line["structure"] in GOOD_STRUCTURES


def _stored_types(env: Env) -> dict[str, str]:
    with env.store.read() as conn:
        return dict(conn.execute(select(mailbox.c.address, mailbox.c.type).where(mailbox.c.domain == A)).all())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(previous=lists, new=lists)
def test_published_set_is_valid_lines_plus_kept_boxes(env: Env, previous: list[dict], new: list[dict]) -> None:
    confirm = {"confirm_mass_delete": "true"}
    other = [per("camille.martin", domain=B), org("accueil", domain=B)]
    assert env.put(B, other, params=confirm).status_code == 200
    other_before = env.current(B)
    assert env.put(A, previous, params=confirm).status_code == 200
    before = env.current(A)
    types = _stored_types(env)

    report = env.put(A, new, params=confirm).json()
    after = env.current(A)

    copies: dict[str, int] = {}
    for line in new:
        copies[line["address"]] = copies.get(line["address"], 0) + 1
    valid = {ln["address"]: ln for ln in new if _valid(ln, copies[ln["address"]], types.get(ln["address"]))}
    rejected = {ln["address"] for ln in new} - set(valid)
    kept = {a for a in rejected if a in before}
    assert set(after) == set(valid) | kept
    for address, line in valid.items():
        got = after[address]
        assert (got["type"], got["holder"], got["rank"]) == (line["type"], line.get("holder"), line.get("rank"))
        assert got["structure"] == (GOOD_STRUCTURES[line["structure"]] if line.get("structure") else None)
        assert got["service"] == line.get("service")
    for address in kept:
        assert after[address] == before[address]
    assert {r["address"] for r in report["rejected"]} == rejected
    assert report["created"] + report["updated"] + report["unchanged"] == len(valid)
    assert report["deleted"] == len(set(before) - set(valid) - kept)
    assert env.current(B) == other_before
