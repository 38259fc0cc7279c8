"""Paging walks: each record exactly once, even while records change; next
links cannot be forged; a generic FHIR client (fhirpy) searches and pages."""

from __future__ import annotations

import base64

import pytest
from fhir_data import World
from sqlalchemy import select

from annuaire.fhir import paging, params, query
from annuaire.fhir.cache import refresh
from annuaire.fhir.tables import fhir_sync
from annuaire.store.schema import mailbox, person


def walk(api, path, query_params):
    seen, pages = [], 0
    with api.client() as c:
        r = c.get(path, params=query_params)
        while True:
            assert r.status_code == 200, r.text
            b = r.json()
            pages += 1
            seen += [e["resource"]["id"] for e in b["entry"]]
            nxt = [link["url"] for link in b["link"] if link["relation"] == "next"]
            assert b["link"][-1]["relation"] == "self"
            if not nxt:
                return seen, pages
            assert nxt[0].startswith(f"{api.base}/_page?id=")
            r = c.get(nxt[0])


def test_full_walk_returns_each_record_once(api):
    seen, pages = walk(api, "/Practitioner", {"_count": "7"})
    assert len(seen) == len(set(seen)) == 125 and pages == 18
    seen, _ = walk(api, "/PractitionerRole", {"_count": "50", "organization": f"001-01-{api.data['s2']}"})
    assert len(seen) == len(set(seen)) == 121
    first = api.json("/Practitioner", params={"_count": "7"})
    nxt = first["link"][0]["url"]
    page2 = api.json(nxt.replace(api.base, ""))
    assert page2["total"] == 125  # the total is carried along
    assert page2["link"][-1] == {"relation": "self", "url": nxt}


def test_walk_during_changes_is_consistent(fresh_api):
    api, store = fresh_api, fresh_api.store
    w = World(store)
    w._next = dict.fromkeys(w._next, 10000)
    seen = []
    with api.client() as c:
        r = c.get("/Practitioner", params={"_count": "20"})
        first = True
        while True:
            b = r.json()
            seen += [e["resource"]["id"] for e in b["entry"]]
            if first:  # changes in the middle of the walk
                first = False
                w.person("30000000001", "NOUVEAU", "Arrive")  # created after the walk started
                w.change(person, "person", "id_nat", "82" + f"{99:010d}", last_name="RENOMME")
                w.change(mailbox, "mailbox", "address", "cabinet.martin@autre.mssante.fr", active=False)
                refresh(store)
            nxt = [link["url"] for link in b["link"] if link["relation"] == "next"]
            if not nxt:
                break
            r = c.get(nxt[0])
    assert len(seen) == len(set(seen)) == 125  # the snapshot: each once, the newcomer left out
    assert api.json("/Practitioner", params={"family": "nouveau"})["total"] == 1


def test_next_links_cannot_be_forged(api):
    first = api.json("/Practitioner", params={"_count": "5", "family": "pageur"})
    token = first["link"][0]["url"].split("id=", 1)[1]
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for bad in (forged, token[:-2], "abc", token + "x"):
        r = api.get("/_page", params={"id": bad})
        assert r.status_code == 400, bad
        assert r.json()["resourceType"] == "OperationOutcome"
    assert api.get("/_page", params={"id": token, "_count": "500"}).status_code == 400
    assert api.get("/_page", params={"id": token}).status_code == 200


def test_a_link_issued_compressed_by_an_earlier_version_still_works() -> None:
    """Links issued before tokens were plain JSON held zlib-compressed JSON: valid for a day."""
    import hashlib
    import hmac
    import zlib

    secret = b"s" * 32
    cursor = paging.Cursor(params.parse("Practitioner", [("family", "pageur")], 5, 1000), ["pageurb", 42], (1, 99), 120)
    token = paging.encode(secret, cursor)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    body = zlib.compress(raw[16:], 6)  # (the MAC is its first 16 bytes)
    old = base64.urlsafe_b64encode(hmac.new(secret, body, hashlib.sha256).digest()[:16] + body).rstrip(b"=").decode()
    for given in (token, old):
        decoded = paging.decode(secret, given)
        assert (decoded.after, decoded.bounds, decoded.total) == (["pageurb", 42], (1, 99), 120)
        assert decoded.search.canonical() == cursor.search.canonical()


def test_fhirpy_searches_and_pages(api):
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(api.base, extra_headers={"ESANTE-API-KEY": api.key})
    found = client.resources("Practitioner").search(given="bénédicte").fetch_all()
    assert sorted(p["name"][0]["family"] for p in found) == ["MARTIN", "TESTDUPONT"]
    everyone = client.resources("Practitioner").search(family="pageur").limit(9).fetch_all()
    ids = [p.id for p in everyone]
    assert len(ids) == len(set(ids)) == 120
    role = client.resources("PractitionerRole").search(practitioner=f"003-{api.data['bene']}-{api.data['bene']}").first()
    assert role["organization"]["reference"] == f"Organization/001-01-{api.data['s1']}"
    bene = client.reference("Practitioner", f"003-{api.data['bene']}-{api.data['bene']}").to_resource()
    assert bene["identifier"][1]["value"] == "10000000017"


def walk_resources(api, path, query_params):
    found = []
    with api.client() as c:
        r = c.get(path, params=query_params)
        while True:
            assert r.status_code == 200, r.text
            b = r.json()
            found += [e["resource"] for e in b["entry"]]
            nxt = [link["url"] for link in b["link"] if link["relation"] == "next"]
            if not nxt:
                return found, b.get("total")
            r = c.get(nxt[0])


def test_a_name_search_pages_in_name_order_each_match_once(api):
    """A family prefix is read in its index's order, (name, id): page after page, whether the
    total is counted (at most 500 matches) or not, each match once, names never going back."""
    expected = {f"003-{pid}-{pid}" for pid in api.data["pageurs"]}
    for total in ("estimate", "none"):
        for count in ("3", "7", "50"):
            found, _ = walk_resources(api, "/Practitioner", {"family": "pageur", "_count": count, "_total": total})
            ids = [r["id"] for r in found]
            assert len(ids) == len(set(ids)) and set(ids) == expected, (total, count)
            order = [(r["name"][0]["family"], int(r["id"].split("-")[1])) for r in found]
            assert order == sorted(order), (total, count)
    first = api.json("/Practitioner", params={"family": "pageurc", "_count": "2"})
    assert first["total"] == len([n for n in range(120) if n % 26 == 2])


def test_other_searches_page_in_id_order(api):
    """Searches not driven by one name range keep the id order, page after page."""
    found, total = walk_resources(api, "/PractitionerRole", {"organization": f"001-01-{api.data['s2']}", "_count": "7"})
    activity_ids = [int(r["id"].rsplit("-", 1)[1]) for r in found]
    assert activity_ids == sorted(activity_ids) and len(set(activity_ids)) == len(activity_ids) == total == 121


STRATEGIES = [
    ("/Practitioner", {"name:contains": "ageur"}),  # trigram lookup (FTS5 in id order; PostgreSQL: listed once)
    ("/Practitioner", {"name": "pageur"}),  # two name ranges, merged in id order
    ("/Practitioner", {"family": "pageur"}),  # one name range, in its own order
    ("/PractitionerRole", {"organization": "s2"}),  # an id lookup
]


@pytest.mark.parametrize("path,asked", STRATEGIES, ids=[next(iter(p)) for _, p in STRATEGIES])
def test_every_way_of_reading_candidates_finds_the_same_matches(api, monkeypatch, path, asked):
    """The thresholds that choose how candidates are read (few: counted; more: driven; many:
    the cache walked) lowered so that each way is taken: the same matches each time, each once."""
    asked = {k: f"001-01-{api.data[v]}" if k == "organization" else v for k, v in asked.items()}
    expected, total = walk_resources(api, path, {**asked, "_count": "9", "_total": "accurate"})
    ids = sorted(r["id"] for r in expected)
    assert total == len(ids) > 100
    for drive, walk in ((5, 40), (5, 1000), (1000, 5000)):
        monkeypatch.setattr(query, "DRIVE_LIMIT", drive)
        monkeypatch.setattr(query, "WALK_THRESHOLD", walk)
        for mode in ("estimate", "accurate"):
            found, counted = walk_resources(api, path, {**asked, "_count": "9", "_total": mode})
            assert sorted(r["id"] for r in found) == ids, (drive, walk, mode)
            assert counted == (len(ids) if mode == "accurate" or drive >= len(ids) else None), (drive, walk, mode)


def test_a_link_of_the_other_order_is_refused(api):
    """A link whose position is of the other order (issued by a server version that paged this
    search the other way) is refused with a clear error, never followed from the start again."""
    with api.store.read() as conn:
        secret = conn.execute(select(fhir_sync.c.secret)).scalar_one().encode()
    for pairs, after in (([("family", "pageur")], 5), ([("organization", f"001-01-{api.data['s2']}")], ["x", 5])):
        search = params.parse("Practitioner" if pairs[0][0] == "family" else "PractitionerRole", pairs, 3, 1000)
        token = paging.encode(secret, paging.Cursor(search, after, (0, 10**9), None))
        r = api.get("/_page", params={"id": token})
        assert r.status_code == 400 and "start the search again" in r.text, r.text
