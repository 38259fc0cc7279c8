"""Fuzz of the operator API over real HTTP, on both engines: whatever the path, the query
parameters and the headers, never a 5xx, always problem+json, and a 4xx names what was wrong.

hypothesis draws requests from the API's own vocabulary (its paths, parameters and
headers) mixed with hostile values: numbers beyond 64 bits, Unicode digits ('²', '١'),
5,000-digit numbers, NUL characters, dates at the ends of the calendar, malformed tokens
naming operators that do not exist or cannot exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annuaire.config import Settings
from annuaire.store import Store
from tests.mailboxes.mailbox_fixtures import Env, make_env

A = "a.mssante.fr"
BIG = "9" * 20
PARAMETERS = ("since", "after", "limit", "cursor", "dry_run", "confirm_mass_delete", "format")
# Words by which a 400 names what was wrong (besides the names of the parameters sent).
NAMES = ("query parameter", "domain", "body", "JSON", "header", "Authorization", "content type", "If-Match",
         "cursor", "line", "charset", "format", "mailboxes", "since")


@pytest.fixture(scope="module")
def fuzz_env(module_store: Store) -> Iterator[Env]:
    """No failed-authentication throttle here: the fuzz would spend the budget of its one
    address at once, and every later request would be the same 429 (tested in test_tokens.py)."""
    with make_env(module_store, Settings(auth_failures_per_address=0, auth_failures_per_operator=0)) as env:
        yield env


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-10, max_value=10**30).map(str),
        st.sampled_from([BIG, "9" * 5000, "²", "١٢", "0x10", "1e3", " 1", "1 ", "+1", "-0", "", "9223372036854775808",
                         "9223372036854775807", "18446744073709551616"]),
    )


hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "a\x00b", "%00", "'; DROP TABLE operator; --", "../../etc/passwd", "é" * 300,
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30", "start"]),
)
values = st.one_of(numbers(), hostile_text)


def segment(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.map(lambda s: quote(s, safe="")).filter(lambda s: s not in ("", ".", ".."))


domains = st.one_of(st.sampled_from([A, "b.mssante.fr", "c.mssante.fr", "unknown.mssante.fr", "A.MSSANTE.FR."]),
                    segment(hostile_text))
paths = st.one_of(
    st.just("/api/v1/domains"),
    st.just("/api/v1/openapi.json"),
    domains.map(lambda d: f"/api/v1/domains/{d}/mailboxes"),
    domains.map(lambda d: f"/api/v1/domains/{d}/history"),
    segment(numbers()).map(lambda n: f"/api/v1/publications/{n}"),
    segment(hostile_text).map(lambda s: f"/api/v1/{s}"),
    st.lists(segment(hostile_text), min_size=1, max_size=4).map(lambda parts: "/api/v1/" + "/".join(parts)),
)
query = st.dictionaries(st.one_of(st.sampled_from(PARAMETERS), st.text(min_size=1, max_size=10)), values, max_size=4)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=60)


@st.composite
def authorization(draw: st.DrawFn, good: str) -> str | None:
    kind = draw(st.sampled_from(["good", "none", "operator", "shape", "text"]))
    if kind == "good":
        return f"Bearer {good}"
    if kind == "none":
        return None
    if kind == "operator":
        ident = draw(numbers())
        secret = draw(st.sampled_from(["x", "a" * 43, good.rsplit("_", 1)[1]]))
        return f"Bearer ann_{ident}_{secret}"
    if kind == "shape":
        return draw(st.sampled_from(["Bearer", "Bearer ", "Basic abc", "bearer ann_1_", "Bearer ann__x",
                                     f"Bearer ann_{BIG}_x", "Bearer ann_²_" + "a" * 43]))
    return draw(header_text)


@st.composite
def requests(draw: st.DrawFn, good: str) -> dict[str, Any]:
    method = draw(st.sampled_from(["GET", "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    headers: dict[str, bytes] = {}
    auth = draw(authorization(good))
    if auth is not None:
        headers["Authorization"] = auth.strip(" \t").encode()  # UTF-8 bytes as sent; (outer spaces: refused by httpx)
    for name in draw(st.lists(st.sampled_from(["If-Match", "Content-Type", "Accept", "X-Forwarded-For"]), max_size=3)):
        headers[name] = draw(st.one_of(header_text, numbers())).strip(" \t").encode("latin-1", "replace")
    body = draw(st.one_of(st.just(b'{"mailboxes": []}'), st.binary(max_size=200),
                          st.just(b"Type de BAL|Adresse BAL\nPER|x@a.mssante.fr\n")))
    return {"method": method, "path": draw(paths), "params": draw(query), "headers": headers,
            "body": body if method in ("PUT", "POST", "PATCH") else None}


def check(r: httpx.Response, request: dict[str, Any]) -> None:
    where = f"{request['method']} {r.request.url} {request['headers']}"
    assert r.status_code < 500, (where, r.status_code, r.text)
    if r.status_code < 400:
        return
    assert r.headers["content-type"] == "application/problem+json", (where, r.headers)
    if request["method"] == "HEAD":
        return
    body = r.json()
    assert body["status"] == r.status_code and body["title"] and body["detail"], (where, body)
    if r.status_code in (401, 429):
        assert body.get("parameter") == "Authorization" or body.get("code") == "TooManyConnections", (where, body)
    elif r.status_code == 400:
        named = [n for n in (*request["params"], *NAMES) if n and n.lower() in body["detail"].lower()]
        assert named, (where, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_no_request_gets_a_5xx(fuzz_env: Env, data: st.DataObject) -> None:
    request = data.draw(requests(fuzz_env.tokens["alpha"]))
    r = fuzz_env.client.request(request["method"], request["path"], params=request["params"],
                                headers=request["headers"], content=request["body"])
    check(r, request)


@pytest.mark.parametrize("path,params,headers,status,named", [
    ("/api/v1/domains", {}, {"Authorization": f"Bearer ann_{BIG}_x"}, 401, "invalid API token"),
    ("/api/v1/domains", {}, {"Authorization": "Bearer ann_²_" + "a" * 43}, 401, "invalid API token"),
    (f"/api/v1/publications/{BIG}", {}, None, 404, "publication"),
    ("/api/v1/publications/²", {}, None, 404, "publication"),
    (f"/api/v1/domains/{A}/history", {"after": BIG}, None, 400, "after"),
    (f"/api/v1/domains/{A}/history", {"after": "²"}, None, 400, "after"),
    (f"/api/v1/domains/{A}/history", {"limit": "9" * 5000}, None, 400, "limit"),
    (f"/api/v1/domains/{A}/history", {"since": "0001-01-01T00:00:00+01:00"}, None, 400, "since"),
    (f"/api/v1/domains/{A}/history", {"since": "9999-12-31T23:59:59-01:00"}, None, 400, "since"),
    (f"/api/v1/domains/{A}/history", {"cursor": "x" * 100}, None, 400, "cursor"),
    (f"/api/v1/domains/{A}/history", {"cursor": "\x00"}, None, 400, "cursor"),
    ("/api/v1/domains/a%00.mssante.fr/mailboxes", {}, None, 400, "domain"),
    (f"/api/v1/domains/{'a' * 300}/mailboxes", {}, None, 400, "domain"),
])
def test_known_oversized_and_odd_values(fuzz_env: Env, path: str, params: dict, headers: dict | None, status: int,
                                        named: str) -> None:
    headers = headers or {"Authorization": f"Bearer {fuzz_env.tokens['alpha']}"}
    r = fuzz_env.client.get(path, params=params, headers={k: v.encode() for k, v in headers.items()})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert named in r.json()["detail"], r.json()


def test_if_match_beyond_any_version_never_matches(fuzz_env: Env) -> None:
    for value in ("9" * 5000, "²", f'"{BIG}"'):
        r = fuzz_env.put(A, [], headers={"If-Match": value.encode()})
        assert r.status_code == 412 and "If-Match" in r.json()["detail"], r.text
