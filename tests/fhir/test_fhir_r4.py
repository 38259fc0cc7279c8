"""R4 validity of what the API serves, checked by an independent FHIR R4 (4.0.1) library
(`fhirkit`, PyPI `fhirkit-rs`: every R4 resource and datatype generated from the
specification; cardinalities, types, primitive formats, unknown elements, choice types),
with `fhir.resources`' R4B models as a second opinion (id and code patterns).

Served over real HTTP: every resource of every type (reads and search entries, inactive
ones included), searchset Bundles (plain, with includes and revincludes, `_elements`,
`_summary=count`), the CapabilityStatement and OperationOutcomes of each status.

One known deviation is kept on purpose: an empty Bundle (`_summary=count` included)
carries `"entry": []`, as the national API's searchsets do (clients of it rely on the array
being there), where R4 JSON would leave the element out. The tests pin that it is the only
issue of such a Bundle.
"""

from __future__ import annotations

from typing import Any

import fhirkit
import httpx
import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

TYPES = ("Practitioner", "PractitionerRole", "Organization")
EMPTY_ENTRY = "Bundle.entry: an empty array is not allowed; leave the element out"


def issues(doc: Any) -> list[str]:
    """R4 issues (fhirkit), and those of fhir.resources' R4B models, which also check the
    patterns of ids and codes that fhirkit leaves aside (the elements served here are the
    same in R4 and R4B). Neither checks required value sets nor invariants such as ext-1."""
    found = [str(i) for i in fhirkit.validate(doc)]
    data = orjson.loads(doc) if isinstance(doc, bytes) else doc
    try:
        get_fhir_model_class(data["resourceType"]).model_validate(data)
    except ValidationError as exc:
        found += [f"R4B {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return found


def valid(r: httpx.Response, status: int = 200) -> dict:
    """The answer's document, R4-valid but for the national `"entry": []` of an empty Bundle."""
    assert r.status_code == status, r.text
    doc = r.json()
    allowed = ["error at " + EMPTY_ENTRY] if doc.get("entry") == [] else []
    assert issues(r.content) == allowed, (doc.get("resourceType"), doc.get("id"), issues(r.content))
    return doc


def test_the_validator_is_r4_and_finds_mistakes(api):
    assert fhirkit.FHIR_VERSION.startswith("4.0")
    pid = api.data["bene"]
    doc = api.json(f"/Practitioner/003-{pid}-{pid}")
    assert issues(doc) == []
    broken = {**doc, "active": "yes", "birthPlace": "x", "telecom": [{**doc["telecom"][0], "rank": 0}]}
    found = issues(broken)
    assert any("Practitioner.active" in i for i in found) and any("birthPlace" in i for i in found)
    assert any("telecom[0].rank" in i for i in found)
    assert any(i.startswith("R4B id:") for i in issues({**doc, "id": "003 1"}))


@pytest.mark.parametrize("rtype", TYPES)
def test_every_resource_served_is_valid_r4(api, rtype):
    with api.client() as c:
        bundle = valid(c.get(f"/{rtype}", params={"_count": "1000"}))
        assert len(bundle["entry"]) > 2 and "next" not in [link["relation"] for link in bundle["link"]]
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert issues(resource) == [], (resource["id"], issues(resource))
        assert any(not e["resource"]["active"] for e in bundle["entry"]) or rtype == "PractitionerRole"
        for entry in bundle["entry"][:10]:
            resource = entry["resource"]
            if resource["active"]:
                valid(c.get(f"/{rtype}/{resource['id']}"))
            else:
                valid(c.get(f"/{rtype}/{resource['id']}"), 410)  # its OperationOutcome


@pytest.mark.parametrize(("path", "params"), [
    ("/Practitioner", {"family": "pageur", "_count": "3"}),  # with a next link
    ("/Practitioner", {"_id": "003-1-1", "_revinclude": "PractitionerRole:practitioner"}),
    ("/PractitionerRole", {"_include": "*", "_count": "5"}),
    ("/Organization", {"_include": "Organization:partof", "_revinclude": "PractitionerRole:organization"}),
    ("/Organization", {"_elements": "name,address"}),
    ("/Practitioner", {"family": "pageur", "_summary": "count"}),
    ("/Practitioner", {"family": "pageur", "_total": "none"}),
])
def test_searchset_bundles_are_valid_r4(api, path, params):
    with api.client() as c:
        bundle = valid(c.get(path, params=params))
        assert bundle["type"] == "searchset"
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if following:
            valid(c.get(following[0]))


@pytest.mark.parametrize("rtype", TYPES)
def test_history_bundles_and_vreads_are_valid_r4(api, rtype):
    with api.client() as c:
        assert valid(c.get(f"/{rtype}/_history", params={"_count": "5"}))["type"] == "history"
        served = c.get(f"/{rtype}", params={"_count": "1000"}).json()["entry"]
        for resource in [e["resource"] for e in served][:5] + [e["resource"] for e in served if not e["resource"]["active"]]:
            assert valid(c.get(f"/{rtype}/{resource['id']}/_history"))["type"] == "history"
            vread = c.get(f"/{rtype}/{resource['id']}/_history/{resource['meta']['versionId']}")
            valid(vread, 200 if resource["active"] else 410)


def test_an_empty_searchset_deviates_only_by_its_empty_entry_array(api):
    r = api.get("/Practitioner", params={"family": "nobodyhas"})
    assert r.status_code == 200 and r.json()["entry"] == []
    assert [i.removeprefix("error at ") for i in issues(r.content)] == [EMPTY_ENTRY]
    bundle = r.json()
    del bundle["entry"]
    assert issues(bundle) == []


def test_capability_statement_is_valid_r4(api):
    with httpx.Client(base_url=api.base) as c:  # no key needed
        statement = valid(c.get("/metadata"))
    assert statement["fhirVersion"] == "4.0.1"


def test_operation_outcomes_are_valid_r4(api):
    with api.client() as c, api.client(key=None) as anonymous:
        valid(c.get("/Practitioner", params={"foo": "x"}), 400)
        valid(c.get("/Practitioner?family=%C3"), 400)
        valid(c.get("/Practitioner/003-0-0"), 404)
        valid(c.get("/Patient"), 404)
        valid(c.get("/Practitioner/003-0-0/_history"), 404)
        valid(c.delete("/Practitioner/003-1-1"), 405)
        valid(anonymous.get("/Practitioner"), 401)
