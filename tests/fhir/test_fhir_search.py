"""Each search parameter and modifier against the running API (both engines)."""

from __future__ import annotations

import pytest
from fhir_data import RPPS_BENE

NOS = "https://mos.esante.gouv.fr/NOS"


def ids_of(api, path, **params):
    bundle = api.json(path, params={**params, "_count": "1000"})
    return [e["resource"]["id"] for e in bundle["entry"]]


def pract(pid):
    return f"003-{pid}-{pid}"


def test_family_is_starts_with_case_and_accent_insensitive(api):
    d = api.data
    assert ids_of(api, "/Practitioner", family="testdup") == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", family="TeStDuPoNt") == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", family="dupont") == [pract(d["dupontel"])]  # not TESTDUPONT
    assert ids_of(api, "/Practitioner", family="le gall") == [pract(d["legall"])]
    assert ids_of(api, "/Practitioner", family="le-gall") == [pract(d["legall"])]


def test_benedicte_with_or_without_accent_gives_the_same_people(api):
    d = api.data
    expected = sorted([pract(d["bene"]), pract(d["martin"])])
    assert sorted(ids_of(api, "/Practitioner", given="bénédicte")) == expected
    assert sorted(ids_of(api, "/Practitioner", given="benedicte")) == expected
    assert sorted(ids_of(api, "/Practitioner", given="BENEDICTE")) == expected
    assert sorted(ids_of(api, "/Practitioner", name="Bénéd")) == expected


def test_exact_and_contains(api):
    d = api.data
    assert ids_of(api, "/Practitioner", **{"given:exact": "Bénédicte"}) == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", **{"given:exact": "bénédicte"}) == []  # exact is exact
    assert ids_of(api, "/Practitioner", **{"family:exact": "DUPONT"}) == []
    assert sorted(ids_of(api, "/Practitioner", **{"family:contains": "dupont"})) == sorted(
        [pract(d["bene"]), pract(d["dupontel"])])
    assert sorted(ids_of(api, "/Practitioner", **{"name:contains": "nédic"})) == sorted(
        [pract(d["bene"]), pract(d["martin"])])
    r = api.get("/Practitioner", params={"name:contains": "du"})
    assert r.status_code == 400 and "at least 3" in r.json()["issue"][0]["diagnostics"]
    assert api.get("/Practitioner", params={"family:below": "x"}).status_code == 400


def test_name_matches_family_then_given(api):
    d = api.data
    assert ids_of(api, "/Practitioner", name="testdupont bene") == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", name="anne marie") == [pract(d["legall"])]


def test_or_by_commas_and_by_repetition(api):
    d = api.data
    assert sorted(ids_of(api, "/Practitioner", family="testdupont,dupontel")) == sorted(
        [pract(d["bene"]), pract(d["dupontel"])])
    with api.client() as c:
        r = c.get("/Practitioner?given=benedicte&family=martin")
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [pract(d["martin"])]
        r = c.get("/Practitioner?family=dupont&family=dupontel")  # AND
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [pract(d["dupontel"])]


def test_identifier_tokens(api):
    d = api.data
    bene = [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", identifier=RPPS_BENE) == bene
    assert ids_of(api, "/Practitioner", identifier="8" + RPPS_BENE) == bene
    assert ids_of(api, "/Practitioner", identifier=f"https://rpps.esante.gouv.fr|{RPPS_BENE}") == bene
    assert ids_of(api, "/Practitioner", identifier=f"http://rpps.fr|{RPPS_BENE}") == bene
    assert ids_of(api, "/Practitioner", identifier=f"urn:oid:1.2.250.1.71.4.2.1|8{RPPS_BENE}") == bene
    assert ids_of(api, "/Practitioner", identifier=f"urn:oid:1.2.250.1.71.4.2.1|{RPPS_BENE}") == []
    assert ids_of(api, "/Practitioner", identifier=f"https://sirene.fr|{RPPS_BENE}") == []
    # identifiers also find inactive records (incremental sync needs them)
    assert ids_of(api, "/Practitioner", identifier="10000000058") == [pract(d["ancien"])]
    n = len(ids_of(api, "/Practitioner", **{"identifier-type": "RPPS"}))
    assert n == 125
    role = d["bene_role"]
    assert ids_of(api, "/PractitionerRole", identifier=f"https://rpps.esante.gouv.fr|{role}") == [f"005-{d['bene']}-{role}"]
    s1 = f"001-01-{d['s1']}"
    assert ids_of(api, "/Organization", identifier="https://finess.esante.gouv.fr|990000019") == [s1]
    assert ids_of(api, "/Organization", identifier="urn:oid:1.2.250.1.71.4.2.2|1990000019") == [s1]
    assert ids_of(api, "/Organization", identifier="https://sirene.fr|99000001900011") == [s1]
    assert ids_of(api, "/Organization", identifier="https://sirene.fr|990000019") == [s1]  # SIREN
    ej = ids_of(api, "/Organization", identifier="https://finess.esante.gouv.fr|990000027")
    assert len(ej) == 1 and ej[0].startswith("001-02-")
    assert ids_of(api, "/Organization", **{"identifier-type": "FINEJ"}) == ej


def test_qualification_role_and_type_tokens(api):
    d = api.data
    g15 = f"{NOS}/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
    assert ids_of(api, "/Practitioner", **{"qualification-code": "21"}) == [pract(d["martin"])]
    assert ids_of(api, "/Practitioner", **{"qualification-code": f"{g15}|21"}) == [pract(d["martin"])]
    assert ids_of(api, "/Practitioner", **{"qualification-code": "SM41"}) == [pract(d["bene"])]
    r38 = f"{NOS}/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
    assert ids_of(api, "/Practitioner", **{"qualification-code": f"{r38}|SM41"}) == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", **{"qualification-code": f"{g15}|SM41"}) == []
    assert ids_of(api, "/Practitioner", **{"qualification-code": "DE11"}) == [pract(d["bene"])]
    assert ids_of(api, "/PractitionerRole", role="FON-03") == [f"005-{d['martin']}-{d['martin_role']}"]
    assert len(ids_of(api, "/PractitionerRole", role=f"{NOS}/TRE_R21-Fonction/FHIR/TRE-R21-Fonction|")) == 122
    assert ids_of(api, "/Organization", type="SA01") == [f"001-01-{d['s1']}", f"001-01-{d['s2']}"]
    assert ids_of(api, "/Organization", type="SA99") == []
    geo = ids_of(api, "/Organization", type="GEOGRAPHICAL-ENTITY")
    assert f"001-01-{d['s1']}" in geo and not [i for i in geo if i.startswith("001-02")]
    assert ids_of(api, "/Practitioner", **{"data-registration-authority": "CNOP"}) == [pract(d["martin"])]
    assert len(ids_of(api, "/Practitioner", **{"data-information-system": "RPPS"})) == 124
    assert ids_of(api, "/Practitioner", **{"number-smartcard": "123"}) == []


def test_mailbox_parameters(api):
    d = api.data
    assert ids_of(api, "/Practitioner", **{"mailbox-mss": "benedicte.test"}) == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", **{"mailbox-mss:exact": "benedicte.testdupont@ch-exemple.mssante.fr"}) == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", **{"mailbox-mss:exact": "benedicte.test"}) == []
    # the box tied to the site is on the role; the liste rouge box is invisible
    assert ids_of(api, "/Practitioner", **{"mailbox-mss": "b.testdupont@"}) == []
    assert ids_of(api, "/PractitionerRole", **{"mailbox-mss": "b.testdupont@"}) == [f"005-{d['bene']}-{d['bene_role']}"]
    assert ids_of(api, "/Practitioner", **{"mailbox-mss": "cachee"}) == []
    assert ids_of(api, "/Practitioner", **{"mailbox-mss:contains": "@autre.mssante.fr"}) == [pract(d["martin"])]
    assert ids_of(api, "/Practitioner", **{"mailbox-mss:contains": "testdupont@ch-exemple"}) == [pract(d["bene"])]
    assert ids_of(api, "/Practitioner", **{"mailbox-mss:contains": "cachee"}) == []
    orgs = ids_of(api, "/Organization", **{"mailbox-mss:contains": "@ch-exemple.mssante.fr"})
    assert len(orgs) == 2 and f"001-01-{d['s1']}" in orgs
    assert ids_of(api, "/Organization", **{"mailbox-mss:contains": "confidentiel"}) == []
    assert ids_of(api, "/Organization", **{"mailbox-mss-type": "APP"}) == [f"001-01-{d['s1']}"]
    assert ids_of(api, "/Practitioner", **{"mailbox-mss-type": "CAB"}) == [pract(d["martin"])]


def test_references_and_address(api):
    d = api.data
    s2 = f"001-01-{d['s2']}"
    assert len(ids_of(api, "/PractitionerRole", organization=f"Organization/{s2}")) == 121
    assert ids_of(api, "/PractitionerRole", practitioner=pract(d["bene"])) == [f"005-{d['bene']}-{d['bene_role']}"]
    site = api.json(f"/Organization/001-01-{d['s1']}")
    ej = site["partOf"]["reference"]
    assert ids_of(api, "/Organization", partof=ej) == [f"001-01-{d['s1']}"]  # s3 is inactive
    assert ids_of(api, "/Organization", **{"address-city": "autrev"}) == [s2]
    assert ids_of(api, "/Organization", **{"address-postalcode": "991"}) == [s2]
    assert ids_of(api, "/Organization", **{"address-line": "av des lil"}) == [s2]
    assert ids_of(api, "/Organization", address="autreville") == [s2]
    assert ids_of(api, "/Organization", name="cabinet fict") == [s2]
    assert ids_of(api, "/Organization", **{"name:contains": "fictif"}) == [s2]
    assert api.get("/PractitionerRole", params={"organization": f"Practitioner/{s2}"}).status_code == 400


def test_last_updated_and_active(api):
    d = api.data
    assert len(ids_of(api, "/Practitioner", _lastUpdated="ge2000-01-01")) == 125
    assert ids_of(api, "/Practitioner", _lastUpdated="lt2000-01-01") == []
    assert ids_of(api, "/Practitioner", _lastUpdated="gt2999-01-01T00:00:00+02:00") == []
    assert len(ids_of(api, "/Practitioner", _lastUpdated="ge2000-01-01", active="false")) == 1
    assert ids_of(api, "/Practitioner", active="false") == [pract(d["ancien"])]
    for bad in ("2025-13-01", "xx2025", "ge2025-01-01T25:00"):
        r = api.get("/Practitioner", params={"_lastUpdated": bad})
        assert r.status_code == 400, bad
    assert api.get("/Practitioner", params={"active": "yes"}).status_code == 400


def test_count_total_elements(api):
    b = api.json("/Practitioner", params={"_count": "3"})
    assert len(b["entry"]) == 3 and b["total"] == 125 and b["link"][0]["relation"] == "next"
    assert "total" not in api.json("/Practitioner", params={"_total": "none"})
    assert api.json("/Practitioner", params={"_total": "accurate", "_count": "0"})["entry"] == []
    r = api.get("/Practitioner", params={"_total": "maybe"})
    assert r.json()["issue"][0]["diagnostics"] == "Bad value for the _total parameter. Allowed values are : accurate, none, estimate"
    r = api.get("/Practitioner", params={"_count": "abc"})
    assert r.status_code == 400 and "_count" in r.json()["issue"][0]["diagnostics"]
    assert api.get("/Practitioner", params={"_count": "100000"}).status_code == 400
    doc = api.json("/Practitioner", params={"family": "testdupont", "_elements": "name"})["entry"][0]["resource"]
    assert set(doc) == {"resourceType", "id", "meta", "name"}
    assert doc["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert api.get("/Practitioner", params={"_elements": "nope"}).status_code == 400


@pytest.mark.parametrize("bad", ["foo=1", "_sort=family", "_include=Practitioner:organization", "family:missing=true"])
def test_unknown_parameters_are_400_operation_outcomes(api, bad):
    with api.client() as c:
        r = c.get(f"/Practitioner?{bad}")
    assert r.status_code == 400
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error" and body["issue"][0]["code"] == "exception"


def test_include_and_revinclude(api):
    d = api.data
    b = api.json("/Practitioner", params={"family": "testdupont", "_revinclude": "PractitionerRole:practitioner"})
    assert [e["resource"]["resourceType"] for e in b["entry"]] == ["Practitioner", "PractitionerRole"]
    assert b["total"] == 1
    b = api.json("/PractitionerRole", params={"practitioner": pract(d["bene"]), "_include": "*"})
    assert [e["resource"]["id"] for e in b["entry"]] == [
        f"005-{d['bene']}-{d['bene_role']}", pract(d["bene"]), f"001-01-{d['s1']}"]
    b = api.json("/PractitionerRole", params={"practitioner": pract(d["bene"]),
                                               "_include": "PractitionerRole:organization"})
    assert [e["resource"]["resourceType"] for e in b["entry"]] == ["PractitionerRole", "Organization"]
    b = api.json("/Organization", params={"name": "ch exemple", "_include": "Organization:partof"})
    assert [e["resource"]["id"][:6] for e in b["entry"]] == ["001-01", "001-02"]
    b = api.json("/Organization", params={"name": "ch exemple", "_revinclude": "PractitionerRole:organization"})
    assert [e["resource"]["resourceType"] for e in b["entry"]] == ["Organization", "PractitionerRole"]


def test_post_search_is_the_same_as_get(api):
    with api.client() as c:
        r = c.post("/Practitioner/_search", data={"given": "benedicte", "family": "martin"})
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [pract(api.data["martin"])]
    with api.client() as c:
        r = c.post("/Practitioner/_search", data={"nope": "x"})
    assert r.status_code == 400


def test_a_best_effort_total_leaves_inactive_records_out(api):
    """`given=p`: the 120 active "Prenom…" and the inactive Paul ANCIEN are candidates; the total
    counts the active ones (found by leaving out the inactive ones), every page agrees."""
    d = api.data
    bundle = api.json("/Practitioner", params={"given": "p", "_count": "7"})
    assert bundle["total"] == 120 and len(bundle["entry"]) == 7
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    with api.client() as c:
        while (nxt := [link["url"] for link in bundle["link"] if link["relation"] == "next"]):
            bundle = c.get(nxt[0]).json()
            seen += [e["resource"]["id"] for e in bundle["entry"]]
    assert len(seen) == len(set(seen)) == 120 and pract(d["ancien"]) not in seen
    assert ids_of(api, "/Practitioner", given="paul") == []  # (content parameters: active records only)
