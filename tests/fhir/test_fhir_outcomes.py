"""Every error under /fhir/v2 is an OperationOutcome naming what is at fault, over real HTTP:
unknown paths, wrong methods, URLs that do not decode (raw bytes outside ASCII, bad
percent-encoding, bytes that are not UTF-8), bad ids, bad `_history` requests, and
search errors naming the parameter as the client wrote it."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import orjson
import pytest

from annuaire.config import Settings

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def outcome(r: httpx.Response, status: int) -> str:
    """The diagnostics of a one-issue OperationOutcome answered with `status`."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/fhir+json;charset=UTF-8"
    return _diagnostics(r.content)


def _diagnostics(body: bytes) -> str:
    doc = orjson.loads(body)
    assert doc["resourceType"] == "OperationOutcome" and len(doc["issue"]) == 1, doc
    issue = doc["issue"][0]
    assert issue["severity"] == "error" and issue["code"] == "exception"
    return issue["diagnostics"]


def raw(api: Any, target: bytes, method: bytes = b"GET", body: bytes = b"") -> tuple[int, str, str]:
    """A request no client library sends (bytes outside ASCII in its target): status,
    content type and diagnostics of the answer."""
    host, _, rest = api.base.removeprefix("http://").partition("/")
    name, port = host.split(":")
    head = (method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nESANTE-API-KEY: "
            + api.key.encode() + b"\r\n")
    if body:
        head += b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
    with socket.create_connection((name, int(port)), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_text, _, payload = data.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers["content-type"], _diagnostics(payload)


@pytest.mark.parametrize("path", [
    "/Practitioner/003-1-1/extra", "/Practitioner/a/b/c/d", "/", "/Practitioner/003-1-1/$everything/x",
    pytest.param("/Practitioner/003-1-1%0A", id="an-id-with-a-newline"),
])
def test_unknown_paths(api, path):
    assert "does not know how to handle GET" in outcome(api.get(path), 404)


def test_wrong_methods_say_what_is_allowed(api):
    with api.client() as c:
        r = c.delete("/Practitioner/003-1-1")
        assert "DELETE is not allowed" in outcome(r, 405) and r.headers["allow"] == "GET, HEAD"
        r = c.post("/Practitioner")
        assert "POST is not allowed" in outcome(r, 405) and "PATCH" in r.headers["allow"]
        outcome(c.put("/metadata"), 405)
        outcome(c.get("/Practitioner/_search"), 404)  # GET on it is a read of the id "_search"
        r = c.post("/Practitioner/003-1-1/_history")
        assert "POST is not allowed" in outcome(r, 405)


@pytest.mark.parametrize(("path", "status"), [
    ("/_history", 404),  # the whole system's history is not served
    ("/Patient/_history", 404), ("/Patient/1/_history", 404), ("/Practitioner/003-0-0/_history", 404),
    ("/Practitioner/abc/_history/1", 404), ("/Practitioner/003-1-1/_history/abc", 404),
    ("/Practitioner/003-1-1/_history/999", 404), ("/Practitioner/003-1-1/_history/1/x", 404),
    ("/Practitioner/_history?_since=yesterday", 400), ("/Practitioner/_history?family=x", 400),
])
def test_history_errors_are_operation_outcomes(api, path, status):
    outcome(api.get(path), status)


@pytest.mark.parametrize("query", [
    "_count=abc", "_count=-1", "_count=1234567890", f"_count={Settings().fhir_max_count + 1}", "_format=xml",
])
def test_history_refuses_a_result_parameter_as_a_search_does(api, query):
    """`_count` and `_format` of history follow the search's rules: the same values refused, the same message."""
    said = outcome(api.get(f"/Practitioner?{query}"), 400)
    bene = api.data["bene"]
    for path in ("/Practitioner/_history", f"/Practitioner/003-{bene}-{bene}/_history"):
        assert outcome(api.get(f"{path}?{query}"), 400) == said, path


def test_history_takes_the_counts_a_search_takes(api):
    bene, most = api.data["bene"], Settings().fhir_max_count
    versions = api.json(f"/Practitioner/003-{bene}-{bene}/_history", params={"_count": "0"})
    assert versions["total"] >= 1 and versions["entry"] == []  # the total only, as a search's _count=0
    assert api.json("/Practitioner/_history", params={"_count": str(most)})["type"] == "history"  # the bound: taken


@pytest.mark.parametrize(("rtype", "rid"), [
    *[("Practitioner", rid) for rid in ("abc", "003-1-2", "003-1", "003-x-x", "001-01-1", "005-1-1", "%00",
                                        "%FF%FE", "003-99999999999999999999-1", "003-1-1;x", "003-1-1%20")],
    *[("Organization", rid) for rid in ("003-1-1", "001-03-1", "001-01-", "001-02-999", "001-01-1.0")],
    *[("PractitionerRole", rid) for rid in ("005-999-1", "005-2-1", "005-1-1-1", "1")],
])
def test_bad_ids_are_404s(api, rtype, rid):
    assert "Resource not found with id" in outcome(api.get(f"/{rtype}/{rid}"), 404)


def test_raw_bytes_outside_ascii_in_the_request_line(api):
    base = api.base.partition("//")[2].partition("/")[2]
    prefix = b"/" + base.encode()
    for target in (prefix + "/Practitioner?family=é".encode(), prefix + b"/Practitioner/\xff",
                   prefix + "/Organization?address:contains=côte".encode()):
        status, ctype, diagnostics = raw(api, target)
        assert (status, ctype) == (400, "application/fhir+json;charset=utf-8"), diagnostics  # head lowercased
        assert "the target must be ASCII" in diagnostics and "\\x" in diagnostics


@pytest.mark.parametrize(("query", "said"), [
    ("family=%C3", "Invalid UTF-8 in the value of parameter family"),
    ("family=%C3%28", "Invalid UTF-8 in the value of parameter family"),
    ("family=dupont&given=%FF", "Invalid UTF-8 in the value of parameter given"),
    ("fam%FFily=x", "Invalid UTF-8 in a parameter name"),
    ("family=%ZZ", "Invalid percent-encoding in the value of parameter family"),
    ("family=50%", "Invalid percent-encoding in the value of parameter family"),
    ("_count=%G1", "Invalid percent-encoding in the value of parameter _count"),
])
def test_undecodable_queries_name_their_parameter(api, query, said):
    assert said in outcome(api.get(f"/Practitioner?{query}"), 400)
    assert said in outcome(api.get(f"/Practitioner/003-1-1?{query}"), 400)  # a read decodes it too
    assert said in outcome(api.get(f"/_page?{query}"), 400)
    with api.client() as c:
        diagnostics = outcome(c.post("/Practitioner/_search", content=query.encode(), headers=FORM), 400)
        assert said in diagnostics and "form body" in diagnostics


def test_a_well_encoded_query_still_works(api):
    with api.client() as c:
        r = c.get("/Practitioner?given=B%C3%A9n%C3%A9dicte&family=testdupont&_elements=name")
        assert r.status_code == 200 and r.json()["total"] == 1
        r = c.post("/Practitioner/_search", content="given=Bénédicte&family=test+dupont".encode(), headers=FORM)
        assert r.status_code == 200 and r.json()["total"] == 0  # "test dupont" is two words: no such name
        r = c.post("/Practitioner/_search", content=b"given=B%C3%A9n%C3%A9dicte&family=testdupont",
                   headers=FORM)
        assert r.status_code == 200 and r.json()["total"] == 1


@pytest.mark.parametrize(("rtype", "query", "said", "not_said"), [
    ("Organization", "address:contains=ab", "Parameter address:contains: a 'contains' search needs at least 3",
     "postalcode"),
    ("Organization", "address=!!!", "Parameter address: '!!!' has no letter or digit", "address-"),
    ("Organization", "address-line:contains=a", "Parameter address-line:contains", "address-postalcode"),
    ("Organization", "address-postalcode:contains=75", "Parameter address-postalcode:contains", "address-line"),
    ("Organization", "address:below=x", "Modifier :below is not supported on parameter address", "address-"),
    ("Organization", "name:contains=du", "Parameter name:contains", "family"),
    ("Practitioner", "name=-", "Parameter name:", "family"),
    ("Practitioner", "given:exact=%20", "Parameter given has an empty value", "family"),
    ("PractitionerRole", "practitioner=Organization/001-01-1", "Parameter practitioner: Reference", "organization:"),
    ("Practitioner", "_lastUpdated=yesterday", "Bad value 'yesterday' for parameter _lastUpdated", "active"),
    ("Practitioner", "_profile:below=x", "Modifier :below is not supported on parameter _profile", "family"),
    ("Practitioner", "_summary=text", "_summary parameter", "_count"),
    ("Practitioner", "_count=-1", "_count parameter", "_summary"),
    ("Practitioner", "partof=x", "Parameter partof not found for resource Practitioner", "Organization"),
    ("Organization", "_since=2026-01-01", "Organization/_history?_since=", "Practitioner"),
])
def test_search_errors_name_the_parameter_at_fault(api, rtype, query, said, not_said):
    diagnostics = outcome(api.get(f"/{rtype}?{query}"), 400)
    assert said in diagnostics and not_said not in diagnostics, diagnostics
