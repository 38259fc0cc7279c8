"""Incremental sync (`_lastUpdated=ge…`) sees deactivations and mailbox
deletions; unchanged records keep their version."""

from __future__ import annotations

import time

from fhir_data import World

from annuaire.fhir.cache import refresh
from annuaire.store.clock import utc_now
from annuaire.store.schema import activity, mailbox, person


def since(api, rtype, moment):
    b = api.json(f"/{rtype}", params={"_lastUpdated": f"ge{moment}", "_count": "1000"})
    return {e["resource"]["id"]: e["resource"] for e in b["entry"]}


def test_incremental_sync_sees_deactivations_and_mailbox_deletions(fresh_api):
    api, store, d = fresh_api, fresh_api.store, fresh_api.data
    w = World(store)
    time.sleep(0.01)
    mark = utc_now()[:23] + "Z"
    assert since(api, "Practitioner", mark) == {}
    bene, martin = d["bene"], d["martin"]
    w.change(mailbox, "mailbox", "address", "benedicte.testdupont@ch-exemple.mssante.fr", active=False)
    w.change(person, "person", "id_nat", "810000000033", active=False)  # DUPONTEL leaves
    w.change(mailbox, "mailbox", "address", "secretariat.cardio@ch-exemple.mssante.fr", active=False)
    stats = refresh(store)
    assert not stats.full and stats.journal_rows == 3
    changed = since(api, "Practitioner", mark)
    assert set(changed) == {f"003-{bene}-{bene}", f"003-{d['dupontel']}-{d['dupontel']}"}
    lost_box = changed[f"003-{bene}-{bene}"]
    assert lost_box["meta"]["versionId"] == "2" and "telecom" not in lost_box
    gone = changed[f"003-{d['dupontel']}-{d['dupontel']}"]
    assert gone["active"] is False and set(gone) == {"resourceType", "id", "meta", "language", "identifier", "active"}
    assert api.get(f"/Practitioner/003-{d['dupontel']}-{d['dupontel']}").status_code == 410
    orgs = since(api, "Organization", mark)
    assert list(orgs) == [f"001-01-{d['s1']}"]
    assert "secretariat.cardio" not in str(orgs)
    # unchanged records were not touched
    assert f"003-{martin}-{martin}" not in changed
    assert api.json(f"/Practitioner/003-{martin}-{martin}")["meta"]["versionId"] == "1"
    # a mailbox that appears is seen too, and searchable at once
    mark2 = utc_now()[:23] + "Z"
    w.mailbox("nouvelle.boite@autre.mssante.fr", "PER", holder="810000000025")
    refresh(store)
    assert list(since(api, "Practitioner", mark2)) == [f"003-{martin}-{martin}"]
    assert api.json("/Practitioner", params={"mailbox-mss": "nouvelle.boite"})["total"] == 1


def test_role_deactivation_moves_nothing_else(fresh_api):
    api, store, d = fresh_api, fresh_api.store, fresh_api.data
    w = World(store)
    mark = utc_now()[:23] + "Z"
    key = f"{d['bene']}|{d['s1']}|{d['bene_role']}"
    w.change(activity, "activity", "key", key, active=False)
    refresh(store)
    roles = since(api, "PractitionerRole", mark)
    assert list(roles) == [f"005-{d['bene']}-{d['bene_role']}"]
    assert roles[f"005-{d['bene']}-{d['bene_role']}"]["active"] is False
    # the box tied to that site falls back to the practitioner
    doc = api.json(f"/Practitioner/003-{d['bene']}-{d['bene']}")
    assert "b.testdupont@ch-exemple.mssante.fr" in [t["value"] for t in doc["telecom"]]


def test_the_server_follows_the_journal_by_itself(fresh_api):
    api, store = fresh_api, fresh_api.store
    World(store).change(person, "person", "id_nat", "810000000041", last_name="LE GALL-NOUVEAU",
                        last_name_key="le gall nouveau")
    deadline = time.time() + 10
    while time.time() < deadline:
        if api.json("/Practitioner", params={"family": "le gall nouveau"})["entry"]:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the server did not render the change within 10 s")
