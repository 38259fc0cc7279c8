"""Issue 21 over real HTTP, on both engines: what GET returns goes back with PUT unchanged,
and an operator sees, per box, whether the public does and why, and the domain's quality."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import update

from annuaire.mailboxes.quality import quality_report
from annuaire.store.schema import person, structure
from tests.mailboxes.mailbox_fixtures import HUGO, JEAN_PIERRE, Env, org, per

A = "a.mssante.fr"


def _boxes() -> list[dict]:
    return [
        per("camille.martin", structure="F990000019", rank=2, dematerialisation=True),
        per("hugo.lefevre", holder=HUGO, liste_rouge=True),
        org("accueil", service="Accueil", description="Accueil général", responsible="Équipe SI"),
        {"address": f"cabinet@{A}", "type": "CAB", "holder": JEAN_PIERRE, "structure": "312345678900011"},
    ]


def _get(env: Env, op: str = "alpha") -> bytes:
    r = env.get(f"/api/v1/domains/{A}/mailboxes", op=op)
    assert r.status_code == 200, r.text
    return r.content


# --- item 1: round trip ---------------------------------------------------------------------


def test_get_then_put_unchanged_json(env: Env) -> None:
    assert env.put(A, _boxes()).status_code == 200
    listed = _get(env)
    assert set(orjson.loads(listed)) == {"domain", "version", "mailboxes"}
    report = env.put(A, body=listed).json()
    assert (report["unchanged"], report["created"], report["updated"], report["deleted"]) == (4, 0, 0, 0)
    assert report["rejected"] == [] and report["version"] == 1
    dry = env.put(A, body=listed, params={"dry_run": "true"}).json()
    assert dry["unchanged"] == 4 and dry["dry_run"] is True


def test_round_trip_checks_its_version_and_domain(env: Env) -> None:
    env.put(A, _boxes())
    stale = _get(env)  # version 1
    assert env.put(A, _boxes()[:3]).json()["deleted"] == 1  # version 2 meanwhile
    r = env.put(A, body=stale)
    assert r.status_code == 412 and r.json()["code"] == "PreconditionFailed", r.text
    assert len(env.current(A)) == 3  # nothing applied
    # If-Match: * publishes the saved list whatever the version; a matching If-Match too.
    r = env.put(A, body=stale, headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["created"] == 1
    current = orjson.loads(_get(env))
    assert env.put(A, body=orjson.dumps(current), headers={"If-Match": f'"{current["version"]}"'}).status_code == 200
    # Bad read-only fields: a clear 400 that changes nothing.
    for document, needle in (
        ({**current, "domain": "b.mssante.fr"}, "not of a.mssante.fr"),
        ({**current, "domain": 3}, "'domain' must be"),
        ({**current, "version": "3"}, "'version' must be"),
        ({**current, "version": True}, "'version' must be"),
        ({**current, "version": -1}, "'version' must be"),
        ({**current, "extra": 1}, "unknown top-level field(s) 'extra'"),
    ):
        r = env.put(A, body=orjson.dumps(document))
        assert r.status_code == 400 and needle in r.json()["detail"], (document, r.text)
    r = env.put(A, body=orjson.dumps(current), headers={"If-Match": f'"{current["version"] + 5}"'})
    assert r.status_code == 400 and "disagree" in r.json()["detail"]
    assert orjson.loads(_get(env)) == current
    # The domain's name is compared as domains are (case).
    assert env.put(A, body=orjson.dumps({**current, "domain": A.upper()})).status_code == 200


# --- item 2: visibility and quality -------------------------------------------------------------


def test_visibility_per_box(env: Env) -> None:
    boxes = [*_boxes(), per("lucie.bernard", holder="810000000003"),
             org("ferme", structure_id="410000000001")]
    env.put(A, boxes)
    # The structure closed after publication, and a holder left: hidden, not deleted.
    with env.store.write() as conn:
        conn.execute(update(structure).where(structure.c.id == 3).values(active=False))
    r = env.get(f"/api/v1/domains/{A}/visibility")
    assert r.status_code == 200, r.text
    body = r.json()
    by_address = {b["address"].partition("@")[0]: b for b in body["mailboxes"]}
    assert set(by_address) >= {"camille.martin", "hugo.lefevre", "accueil", "cabinet"}
    assert by_address["camille.martin"] == {"address": f"camille.martin@{A}", "type": "PER", "visible": True,
                                            "reasons": [], "messages": [], "messages_en": []}
    assert by_address["hugo.lefevre"]["reasons"] == ["LISTE_ROUGE"] and not by_address["hugo.lefevre"]["visible"]
    assert by_address["hugo.lefevre"]["messages"][0].startswith("BAL en liste rouge")
    # Same answer as the directory's one rule (store.visibility.hidden_boxes).
    from annuaire.store.visibility import hidden_boxes

    with env.store.read() as conn:
        hidden = {h.address: h.reasons for h in hidden_boxes(conn, domains=[A])}
    assert {b["address"]: b["reasons"] for b in body["mailboxes"] if not b["visible"]} == hidden
    assert body["hidden"] == len(hidden) and body["visible"] == len(body["mailboxes"]) - len(hidden)
    with env.store.write() as conn:  # the holder leaves: the box is hidden with its reason
        conn.execute(update(person).where(person.c.id_nat == HUGO).values(active=False))
    try:
        again = {b["address"]: b for b in env.get(f"/api/v1/domains/{A}/visibility").json()["mailboxes"]}
        assert again[f"hugo.lefevre@{A}"]["reasons"] == ["LISTE_ROUGE", "HOLDER_INACTIVE"]
    finally:
        with env.store.write() as conn:
            conn.execute(update(person).where(person.c.id_nat == HUGO).values(active=True))


def test_quality_of_a_domain(env: Env) -> None:
    env.put(A, [*_boxes(), per("autre", holder=HUGO)])
    r = env.get(f"/api/v1/domains/{A}/quality")
    assert r.status_code == 200, r.text
    body = r.json()
    cli_entry = next(e for e in quality_report(env.store, env.settings, operator_name="alpha") if e["domain"] == A)
    assert {k: v for k, v in body.items() if k != "issues"} == orjson.loads(orjson.dumps(cli_entry))
    assert body["mailboxes"] == 5 and body["liste_rouge"] == [f"hugo.lefevre@{A}"]
    assert body["holder_duplicates"] == [{"holder": HUGO, "addresses": [f"autre@{A}", f"hugo.lefevre@{A}"]}]
    assert body["issues"] is True


@pytest.mark.parametrize("view", ["visibility", "quality"])
def test_views_are_the_operators_own(env: Env, view: str) -> None:
    env.put(A, _boxes())
    path = f"/api/v1/domains/{A}/{view}"
    assert env.client.get(path).status_code == 401
    r = env.get(path, op="beta")
    assert r.status_code == 403 and r.json()["code"] == "Forbidden"
    r = env.get(path, params={"x": "1"})
    assert r.status_code == 400 and "unknown query parameter" in r.json()["detail"]
    r = env.get(f"/api/v1/domains/pas%20un%20domaine/{view}")
    assert r.status_code == 400 and "not a mail domain" in r.json()["detail"]
    assert env.get(f"/api/v1/domains/c.mssante.fr/{view}", op="beta").status_code == 200  # empty domain
    r = env.client.post(path, headers={"Authorization": f"Bearer {env.tokens['alpha']}"})
    assert r.status_code == 405 and "GET" in r.headers["allow"]
