"""Publication semantics through the real HTTP API: report, diff, tombstones, journal,
idempotency, dry run, mass-deletion guard, If-Match, history, past reports, CSV."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from annuaire import formats
from annuaire.store.schema import domain, journal, mailbox, run
from tests.mailboxes.mailbox_fixtures import (
    ALIX,
    CAMILLE,
    JEAN_PIERRE,
    LUCIE,
    Env,
    org,
    per,
    reset_publications,
)

A, B, C = "a.mssante.fr", "b.mssante.fr", "c.mssante.fr"


def _rows(env: Env, table, *where) -> list[dict]:
    with env.store.read() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


def _count(env: Env, table) -> int:
    with env.store.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _box(env: Env, address: str) -> dict:
    return _rows(env, mailbox, mailbox.c.address == address)[0]


def test_report_and_first_publication(env: Env) -> None:
    boxes = [per("camille.martin", structure="1990000019", rank=1), per("docteur.x", holder=ALIX), org("accueil", service="Accueil"),
             per("bad", holder="819999999999")]
    r = env.put(A, boxes)
    assert r.status_code == 200
    report = r.json()
    assert {k: report[k] for k in ("domain", "dry_run", "version", "created", "updated", "deleted", "unchanged")} == {
        "domain": A, "dry_run": False, "version": 1, "created": 3, "updated": 0, "deleted": 0, "unchanged": 0}
    assert [(i["index"], i["address"], i["code"]) for i in report["rejected"]] == [(3, f"bad@{A}", "HOLDER_UNKNOWN")]
    assert [(i["index"], i["code"]) for i in report["warnings"]] == [(1, "NAMING_PER_UNRELATED")]
    assert r.headers["etag"] == '"1"'
    stored = _box(env, f"camille.martin@{A}")
    assert (stored["active"], stored["version"], stored["source"], stored["structure_idnat"], stored["rank"]) == (
        True, 1, "operator", "1990000019", 1)
    # The past report is served again, with its status.
    past = env.get(f"/api/v1/publications/{report['publication']}").json()
    assert past["status"] == "ok" and past["created"] == 3 and past["rejected"] == report["rejected"]


def test_identical_list_changes_nothing(env: Env) -> None:
    boxes = [per("camille.martin"), org("accueil", description="Accueil général", liste_rouge=True)]
    first = env.put(A, boxes).json()
    journal_rows = _count(env, journal)
    before = _rows(env, mailbox)
    again = env.put(A, list(reversed(boxes))).json()  # order does not matter
    assert (again["created"], again["updated"], again["deleted"], again["unchanged"]) == (0, 0, 0, 2)
    assert again["version"] == first["version"] == 1
    assert _count(env, journal) == journal_rows  # no journal entry
    after = _rows(env, mailbox)
    assert [(b["version"], b["last_updated"]) for b in after] == [(b["version"], b["last_updated"]) for b in before]


def test_update_delete_recreate(env: Env) -> None:
    env.put(A, [per("camille.martin"), org("accueil", service="Accueil")])
    created_at = _box(env, f"accueil@{A}")["last_updated"]
    report = env.put(A, [per("camille.martin"), org("accueil", service="Accueil principal")]).json()
    assert (report["updated"], report["unchanged"], report["version"]) == (1, 1, 2)
    box = _box(env, f"accueil@{A}")
    assert (box["service"], box["version"]) == ("Accueil principal", 2) and box["last_updated"] > created_at
    # Deletion = tombstone, kept in the store, gone from the list.
    report = env.put(A, [org("accueil", service="Accueil principal")]).json()
    assert (report["deleted"], report["unchanged"], report["version"]) == (1, 1, 3)
    tomb = _box(env, f"camille.martin@{A}")
    assert (tomb["active"], tomb["version"]) == (False, 2)
    assert set(env.current(A)) == {f"accueil@{A}"}
    # Re-creating the address revives the tombstone (same row, next version), journaled as created.
    report = env.put(A, [org("accueil", service="Accueil principal"), per("camille.martin")]).json()
    assert (report["created"], report["unchanged"]) == (1, 1)
    box = _box(env, f"camille.martin@{A}")
    assert (box["active"], box["version"], box["id"]) == (True, 3, tomb["id"])
    changes = [(j["key"], j["change"]) for j in _rows(env, journal, journal.c.scope == A)]
    assert changes == [  # creations of one publication are written in address order
        (f"accueil@{A}", "created"), (f"camille.martin@{A}", "created"), (f"accueil@{A}", "updated"),
        (f"camille.martin@{A}", "deleted"), (f"camille.martin@{A}", "created"),
    ]


def test_rejected_line_keeps_the_existing_box(env: Env) -> None:
    env.put(A, [per("camille.martin", rank=1), org("accueil")])
    report = env.put(A, [per("camille.martin", holder="819999999999"), org("accueil")]).json()
    assert [i["code"] for i in report["rejected"]] == ["HOLDER_UNKNOWN"]
    assert (report["deleted"], report["updated"], report["unchanged"]) == (0, 0, 1)
    box = _box(env, f"camille.martin@{A}")
    assert (box["active"], box["holder"], box["rank"], box["version"]) == (True, CAMILLE, 1, 1)


def test_other_domains_are_never_touched(env: Env) -> None:
    env.put(A, [per("camille.martin")])
    env.put(B, [per("camille.martin", domain=B), per("jp.durand", holder=JEAN_PIERRE, domain=B)])
    env.put(C, [per("alix.petit", holder=ALIX, domain=C)], op="beta")
    before_b, before_c = _rows(env, mailbox, mailbox.c.domain == B), _rows(env, mailbox, mailbox.c.domain == C)
    report = env.put(A, []).json()
    assert report["deleted"] == 1
    assert _rows(env, mailbox, mailbox.c.domain == B) == before_b
    assert _rows(env, mailbox, mailbox.c.domain == C) == before_c


def test_dry_run_reports_the_same_and_applies_nothing(env: Env) -> None:
    env.put(A, [per("camille.martin"), org("accueil")])
    before = (_rows(env, mailbox), _count(env, journal), _rows(env, domain, domain.c.name == A))
    new_list = [org("accueil", service="Accueil"), per("c.martin"), per("x", holder="0")]
    dry = env.put(A, new_list, params={"dry_run": "true"}).json()
    assert dry["dry_run"] is True
    assert (_rows(env, mailbox), _count(env, journal), _rows(env, domain, domain.c.name == A)) == before
    past = env.get(f"/api/v1/publications/{dry['publication']}").json()
    assert past["status"] == "dry_run"
    real = env.put(A, new_list).json()
    strip = ("publication", "dry_run", "fhir_current")
    assert {k: v for k, v in dry.items() if k not in strip} == {k: v for k, v in real.items() if k not in strip}
    assert real["created"] == 1 and real["updated"] == 1 and real["deleted"] == 1
    assert real["fhir_current"] is True  # the FHIR cache serves it before the answer


def test_mass_deletion_guard(env: Env) -> None:
    boxes = [org(f"service{i:02d}") for i in range(40)]
    env.put(A, boxes)
    # 10 deletions (25%) but not more than 10 boxes: allowed.
    assert env.put(A, boxes[:30]).json()["deleted"] == 10
    # 11 deletions of 30 (37%): refused with the figures, nothing applied.
    before = _rows(env, mailbox)
    r = env.put(A, boxes[:19])
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert (problem["would_delete"], problem["active"], problem["max_ratio"], problem["min"]) == (11, 30, 0.2, 10)
    assert "confirm_mass_delete" in problem["detail"]
    assert _rows(env, mailbox) == before
    assert env.get(f"/api/v1/publications/{problem['publication']}").json()["status"] == "refused"
    # Confirmed: applied.
    report = env.put(A, boxes[:19], params={"confirm_mass_delete": "true"}).json()
    assert report["deleted"] == 11
    # An empty list (all boxes) also needs the confirmation.
    assert env.put(A, []).status_code == 409
    assert env.put(A, [], params={"confirm_mass_delete": "1"}).json()["deleted"] == 19


def test_if_match(env: Env) -> None:
    env.put(A, [per("camille.martin")])
    r = env.get(f"/api/v1/domains/{A}/mailboxes")
    etag = r.headers["etag"]
    assert etag == '"1"' and r.json()["version"] == 1
    env.put(A, [per("camille.martin"), org("accueil")])  # someone else publishes: version 2
    stale = env.put(A, [per("camille.martin")], headers={"If-Match": etag})
    assert stale.status_code == 412 and "version 2" in stale.json()["detail"]
    assert set(env.current(A)) == {f"camille.martin@{A}", f"accueil@{A}"}
    ok = env.put(A, [per("camille.martin")], headers={"If-Match": 'W/"2"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"3"'
    assert env.put(A, [per("camille.martin")], headers={"If-Match": '"garbage"'}).status_code == 412
    assert env.put(A, [per("camille.martin")], headers={"If-Match": "*"}).status_code == 200


def test_history(env: Env) -> None:
    env.put(A, [per("camille.martin", responsible="M. Secret")])
    env.put(B, [per("camille.martin", domain=B)])
    middle = env.get(f"/api/v1/domains/{A}/history").json()["entries"][-1]["at"]
    env.put(A, [org("accueil")], params={"confirm_mass_delete": "true"})
    entries = env.get(f"/api/v1/domains/{A}/history").json()["entries"]
    assert [(e["address"], e["change"]) for e in entries] == [
        (f"camille.martin@{A}", "created"), (f"accueil@{A}", "created"), (f"camille.martin@{A}", "deleted")]
    assert entries[0]["data"]["holder"] == CAMILLE and "responsible" not in entries[0]["data"]
    assert b"M. Secret" not in orjson.dumps(entries)
    assert entries[2]["data"] == {"address": f"camille.martin@{A}", "active": False}
    since = env.get(f"/api/v1/domains/{A}/history", params={"since": middle}).json()["entries"]
    offset = middle.replace("Z", "+00:00")
    page = env.get(f"/api/v1/domains/{A}/history", params={"since": offset, "limit": 1}).json()
    assert page["entries"][0]["at"] >= middle and env.get(page["next"]).json()["entries"]
    assert [e["id"] for e in since] == [e["id"] for e in entries if e["at"] >= middle]
    # Paging.
    page = env.get(f"/api/v1/domains/{A}/history", params={"limit": 2}).json()
    assert len(page["entries"]) == 2 and page["next"]
    rest = env.get(page["next"]).json()
    assert [e["id"] for e in page["entries"] + rest["entries"]] == [e["id"] for e in entries]
    assert env.get(f"/api/v1/domains/{A}/history", params={"since": "yesterday"}).status_code == 400


def test_publications_of_another_operator_are_not_shown(env: Env) -> None:
    report = env.put(A, [per("camille.martin")]).json()
    assert env.get(f"/api/v1/publications/{report['publication']}", op="beta").status_code == 404
    assert env.get("/api/v1/publications/999999").status_code == 404
    assert env.get("/api/v1/publications/abc").status_code == 404


def test_get_list_json_and_csv_round_trip(env: Env) -> None:
    boxes = [
        per("camille.martin", structure="F990000019", rank=2, dematerialisation=True, liste_rouge=True),
        org("accueil", service="Accueil", description="Accueil général", responsible="Équipe SI"),
        {"address": f"cabinet@{A}", "type": "CAB", "holder": JEAN_PIERRE, "structure": "312345678900011"},
    ]
    env.put(A, boxes)
    listed = env.current(A)
    assert listed[f"accueil@{A}"]["responsible"] == "Équipe SI"  # the operator's own view
    assert listed[f"camille.martin@{A}"]["structure"] == "1990000019"
    csv = env.get(f"/api/v1/domains/{A}/mailboxes", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("Type de BAL|Adresse BAL|")
    again = env.put(A, body=csv.content, content_type="text/csv").json()
    assert (again["unchanged"], again["created"], again["updated"], again["rejected"]) == (3, 0, 0, [])
    by_accept = env.client.get(f"/api/v1/domains/{A}/mailboxes",
                               headers={"Authorization": f"Bearer {env.tokens['alpha']}", "Accept": "text/csv"})
    assert by_accept.text == csv.text


def test_national_layout_as_body(env: Env) -> None:
    """Operators can send the national extraction layout they already produce (+ optional columns)."""
    header = "|".join(formats.MSSANTE_COLUMNS) + "|Liste rouge|Description|Responsable"
    width = len(formats.MSSANTE_COLUMNS)

    def line(values: dict[str, str], extra: str = "||") -> str:
        cells = [values.get(c, "") for c in formats.MSSANTE_COLUMNS]
        assert len(cells) == width
        return "|".join(cells) + "|" + extra

    text = "\r\n".join([
        header,
        line({"Type de BAL": "PER", "Adresse BAL": f"camille.martin@{A}", "Type Identifiant PP": "8",
              "Identifiant PP": "10000000001", "Identification nationale PP": CAMILLE, "Nom d'exercice": "MARTIN",
              "Dématérialisation": "True"}),
        line({"Type de BAL": "ORG", "Adresse BAL": f"secretariat.cardio@{A}", "Type identifiant structure": "1",
              "Identification Structure": "990000019", "Service de rattachement": "Cardiologie",
              "Dématérialisation": "False"}, "False|Secrétariat de cardiologie|Mme Exemple"),
        line({"Type de BAL": "PER", "Adresse BAL": f"jp.durand@{A}", "Type Identifiant PP": "8",
              "Identifiant PP": "10000000002"}),  # national id rebuilt from type + id
        "",
    ])
    r = env.put(A, body=text.encode(), content_type="text/plain; charset=utf-8")
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["created"], report["rejected"]) == (3, [])
    listed = env.current(A)
    assert listed[f"secretariat.cardio@{A}"]["structure"] == "1990000019"
    assert listed[f"secretariat.cardio@{A}"]["description"] == "Secrétariat de cardiologie"
    assert listed[f"camille.martin@{A}"]["dematerialisation"] is True
    assert listed[f"jp.durand@{A}"]["holder"] == JEAN_PIERRE
    # The same text in latin-1 without a declared charset gives the same list.
    latin = env.put(A, body=text.encode("latin-1"), content_type="text/csv").json()
    assert (latin["unchanged"], latin["rejected"]) == (3, [])
    # Line numbers of a text body are reported.
    bad = env.put(A, body=(header + "\n" + line({"Type de BAL": "PER", "Adresse BAL": f"x@{A}"}) + "\n").encode(),
                  content_type="text/csv", params={"confirm_mass_delete": "true"}).json()
    assert [(i["line"], i["code"]) for i in bad["rejected"]] == [(2, "HOLDER_MISSING")]


def test_domain_version_and_listing(env: Env) -> None:
    env.put(A, [per("camille.martin")])
    env.put(A, [per("camille.martin")])  # unchanged: version stays
    domains = env.get("/api/v1/domains").json()
    assert domains["operator"] == "alpha"
    assert [(d["domain"], d["version"], d["mailboxes"]) for d in domains["domains"]] == [(A, 1, 1), (B, 0, 0)]
    assert domains["domains"][0]["last_published"]
    with env.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(run).where(run.c.domain == A)).scalar() == 2


def test_a_list_checked_in_parts_gives_what_the_whole_list_gives(env: Env, monkeypatch) -> None:
    """On PostgreSQL a list is checked and its new boxes written part by part (STREAMED_PART entries
    at a time): duplicates, rejections and updates spread over several parts give the same report,
    boxes and journal as one part (on SQLite the list is one part either way)."""
    from annuaire.mailboxes import publication

    before = [per("camille.martin"), org("accueil"), org("secretariat"), per("parti", holder=JEAN_PIERRE)]
    after = [
        per("double"), org("accueil", service="Accueil"), per("inconnu", holder="819999999999"),
        per("camille.martin"), org("secretariat", structure_id="1990000027"), per(" DOUBLE"),
        per("lucie", holder=LUCIE), per("nouveau", rank=2), per("triple"), per("triple"), per("triple"),
    ]

    def publish_in_parts(size: int) -> tuple[dict, list, list]:
        reset_publications(env.store)
        monkeypatch.setattr(publication, "STREAMED_PART", size)
        env.put(A, before)
        report = env.put(A, after).json()
        boxes = sorted(
            tuple(v for k, v in box.items() if k not in ("id", "run_id", "last_updated")) for box in _rows(env, mailbox)
        )
        changes = sorted((j["key"], j["change"], j["before_digest"], j["after_digest"], j["data"])
                         for j in _rows(env, journal))
        report.pop("publication")
        return report, boxes, changes

    whole = publish_in_parts(10_000)
    assert publish_in_parts(2) == whole
    report = whole[0]
    assert (report["created"], report["updated"], report["deleted"], report["unchanged"]) == (1, 1, 1, 1)
    assert sorted((i["index"], i["code"]) for i in report["rejected"]) == [
        (0, "DUPLICATE_ADDRESS"), (2, "HOLDER_UNKNOWN"), (4, "STRUCTURE_UNKNOWN"), (5, "DUPLICATE_ADDRESS"),
        (6, "HOLDER_INACTIVE"), (8, "DUPLICATE_ADDRESS"), (9, "DUPLICATE_ADDRESS"), (10, "DUPLICATE_ADDRESS"),
    ]
    assert _box(env, f"secretariat@{A}")["active"]  # its line was rejected: kept as it was
