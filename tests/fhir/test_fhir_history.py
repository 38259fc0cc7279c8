"""History: vread, instance and type `_history` (with `_since`, `_count` and next links), the
methods of each version, the kept period, and a mirror (IHE mCSD ITI-91 style) that replays
`_history?_since` into a local copy and ends equal to the source after random changes."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest
from fhir_data import World
from sqlalchemy import select, update

from annuaire.fhir import history, packing
from annuaire.fhir.cache import refresh
from annuaire.fhir.tables import fhir_history, fhir_resource
from annuaire.store.schema import activity, mailbox, person

TYPES = ("Practitioner", "PractitionerRole", "Organization")
SETTLE = 0.3


@pytest.fixture(autouse=True)
def short_settle(monkeypatch):
    """Type history stops SETTLE seconds before now (render transactions in flight): shortened here,
    the tests wait that long after rendering before they ask."""
    monkeypatch.setattr(history, "SETTLE", SETTLE)


def settled() -> None:
    time.sleep(SETTLE + 0.05)


def practitioner(d: dict, name: str) -> str:
    return f"003-{d[name]}-{d[name]}"


def pageur(d: dict, n: int) -> str:
    """The national id of the n-th generated practitioner (fhir_data.populate), the journal's key."""
    return f"82{n:010d}"


def rename(w: World, d: dict, n: int, last: str) -> None:
    w.change(person, "person", "id_nat", pageur(d, n), last_name=last)


def test_vread_and_instance_history_after_changes(fresh_api):
    api, store, d = fresh_api, fresh_api.store, fresh_api.data
    w = World(store)
    bene = practitioner(d, "bene")
    w.change(person, "person", "id_nat", "810000000017", last_name="TESTDUPONT-NOUVEAU")
    refresh(store)
    w.change(mailbox, "mailbox", "address", "benedicte.testdupont@ch-exemple.mssante.fr", active=False)
    refresh(store)

    current = api.json(f"/Practitioner/{bene}")
    assert current["meta"]["versionId"] == "3"
    first = api.get(f"/Practitioner/{bene}/_history/1")
    assert first.status_code == 200 and first.headers["etag"] == 'W/"1"'
    assert first.json()["name"][0]["family"] == "TESTDUPONT" and first.json()["meta"]["versionId"] == "1"
    second = api.json(f"/Practitioner/{bene}/_history/2")
    assert second["name"][0]["family"] == "TESTDUPONT-NOUVEAU"
    assert "benedicte.testdupont@ch-exemple.mssante.fr" in str(second["telecom"])
    assert api.json(f"/Practitioner/{bene}/_history/3") == current

    bundle = api.json(f"/Practitioner/{bene}/_history")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history" and bundle["total"] == 3
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["3", "2", "1"]  # newest first
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT", "PUT", "POST"]
    assert bundle["entry"][2]["request"]["url"] == "Practitioner"
    assert bundle["entry"][0]["request"]["url"] == f"Practitioner/{bene}"
    assert bundle["entry"][0]["response"]["etag"] == 'W/"3"'
    only = api.json(f"/Practitioner/{bene}/_history", params={"_count": "1"})
    assert only["total"] == 3 and [e["resource"]["meta"]["versionId"] for e in only["entry"]] == ["3"]

    for path, status in ((f"/Practitioner/{bene}/_history/9", 404), (f"/Practitioner/{bene}/_history/x", 404),
                         ("/Practitioner/003-999-999/_history", 404), ("/Practitioner/003-999-999/_history/1", 404),
                         ("/Nothing/1/_history", 404)):
        r = api.get(path)
        assert r.status_code == status, path
        assert r.json()["resourceType"] == "OperationOutcome", path


def test_a_withdrawn_resource_is_a_delete_entry_and_vread_says_gone(fresh_api):
    api, store, d = fresh_api, fresh_api.store, fresh_api.data
    dupontel = practitioner(d, "dupontel")
    World(store).change(person, "person", "id_nat", "810000000033", active=False)
    refresh(store)
    bundle = api.json(f"/Practitioner/{dupontel}/_history")
    newest = bundle["entry"][0]
    assert newest["request"] == {"method": "DELETE", "url": f"Practitioner/{dupontel}"}
    assert newest["response"]["status"] == "410 Gone" and newest["resource"]["active"] is False
    assert api.get(f"/Practitioner/{dupontel}/_history/2").status_code == 410
    assert api.get(f"/Practitioner/{dupontel}/_history/1").status_code == 200


def test_type_history_since_pages_and_the_kept_period(fresh_api, monkeypatch):
    api, store, d = fresh_api, fresh_api.store, fresh_api.data
    w = World(store)
    settled()  # (the first rendering, made by the fixture, before the mark)
    mark = api.json("/Practitioner/_history", params={"_count": "1"})["meta"]["lastUpdated"]
    for n in (3, 5, 8):
        rename(w, d, n, f"RENOMME{n}")
    refresh(store)
    monkeypatch.setattr(history, "SETTLE", 3600.0)  # versions written within SETTLE: on the next poll
    assert api.json("/Practitioner/_history", params={"_since": mark})["entry"] == []
    monkeypatch.setattr(history, "SETTLE", SETTLE)
    settled()
    seen, url, pages = [], "/Practitioner/_history", 0
    params: dict | None = {"_since": mark, "_count": "2"}
    while url:
        bundle = api.json(url, params=params)
        pages += 1
        seen += [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        url, params = (url.split("/fhir/v2", 1)[1] if url else None), None
    assert pages == 2 and sorted(seen) == sorted((practitioner({"p": d["pageurs"][n]}, "p"), "2") for n in (3, 5, 8))
    # every version ever made, without _since: all 125 practitioners' first versions and the 3 second ones
    everything = api.json("/Practitioner/_history", params={"_count": "1000"})
    assert len(everything["entry"]) == len({e["resource"]["id"] for e in everything["entry"]}) + 3
    # before the kept period: refused, naming _since
    r = api.get("/Practitioner/_history", params={"_since": "2000-01-01"})
    assert r.status_code == 400 and "_since" in r.json()["issue"][0]["diagnostics"]
    for bad in ({"_since": "hier"}, {"_count": "-1"}, {"family": "x"}, {"_after": "nope"}):
        r = api.get("/Practitioner/_history", params=bad)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", bad
    assert api.get("/_history").json()["resourceType"] == "OperationOutcome"


def test_versions_superseded_before_the_period_are_pruned_by_the_command(fresh_api, tmp_path):
    api, store, d = fresh_api, fresh_api.store, fresh_api.data
    w = World(store)
    for n in range(4):
        rename(w, d, n, f"AUTRE{n}")
    refresh(store)
    with store.write() as conn:
        conn.execute(update(fhir_history).where(fhir_history.c.rid.in_(d["pageurs"][:2]))
                     .values(superseded_at="2001-01-01T00:00:00.000000Z"))
    done = subprocess.run([sys.executable, "-m", "annuaire", "--db", store.url, "fhir", "prune-history"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 versions" in done.stderr
    with store.read() as conn:
        assert sorted(conn.execute(select(fhir_history.c.rid)).scalars()) == sorted(d["pageurs"][2:4])
    assert api.get(f"/Practitioner/{practitioner({'p': d['pageurs'][0]}, 'p')}/_history/1").status_code == 404
    assert api.get(f"/Practitioner/{practitioner({'p': d['pageurs'][2]}, 'p')}/_history/1").status_code == 200


class Mirror:
    """A client mirroring the directory the way IHE mCSD ITI-91 does: pull each type's
    `_history?_since=<time of its previous pull>`, apply the versions oldest first."""

    def __init__(self, api) -> None:
        self.api = api
        self.resources: dict[tuple[str, str], dict] = {}
        self.since: dict[str, str] = {}

    def pull(self) -> int:
        applied = 0
        for rtype in TYPES:
            params: dict | None = {"_count": "7", **({"_since": self.since[rtype]} if rtype in self.since else {})}
            url: str | None = f"/{rtype}/_history"
            entries, first = [], None
            while url:
                bundle = self.api.json(url, params=params)
                first = first or bundle["meta"]["lastUpdated"]
                entries += bundle["entry"]
                nxt = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
                url, params = (nxt.split("/fhir/v2", 1)[1] if nxt else None), None
            self.since[rtype] = first
            for e in reversed(entries):  # oldest first
                resource = e["resource"]
                key = (rtype, resource["id"])
                known = self.resources.get(key)
                if known is None or int(known["meta"]["versionId"]) < int(resource["meta"]["versionId"]):
                    self.resources[key] = resource  # (a DELETE keeps the withdrawn state: active false)
                    applied += 1
        return applied


def source(store) -> dict[tuple[str, str], dict]:
    import orjson

    names = {"P": "Practitioner", "R": "PractitionerRole", "O": "Organization"}
    with store.read() as conn:
        rows = conn.execute(select(fhir_resource.c.kind, fhir_resource.c.json)).all()
        docs = [(names[k], orjson.loads(packing.unpack(conn, j))) for k, j in rows]
    return {(t, doc["id"]): doc for t, doc in docs}


def test_a_mirror_replaying_history_ends_equal_to_the_source(fresh_api):
    api, store, d = fresh_api, fresh_api.store, fresh_api.data
    w = World(store)
    mirror = Mirror(api)
    settled()
    assert mirror.pull() == len(source(store))
    rng = random.Random(24)
    boxes = 0
    for _round in range(4):
        for _ in range(rng.randint(3, 8)):
            n = rng.randrange(len(d["pageurs"]))
            action = rng.choice(("rename", "leave", "return", "box", "role"))
            if action == "rename":
                rename(w, d, n, f"NOM{rng.randint(0, 999)}")
            elif action in ("leave", "return"):
                w.change(person, "person", "id_nat", pageur(d, n), active=action == "return")
            elif action == "box":
                boxes += 1
                w.mailbox(f"boite{boxes}@autre.mssante.fr", "PER", holder=pageur(d, n))
            else:
                with store.read() as conn:
                    key = conn.execute(select(activity.c.key).where(activity.c.person_id == d["pageurs"][n])).scalar()
                w.change(activity, "activity", "key", key, active=rng.random() < 0.5)
        refresh(store)
        settled()
        assert mirror.pull() > 0
        assert mirror.resources == source(store)
    assert mirror.pull() == 0  # nothing new: nothing applied
