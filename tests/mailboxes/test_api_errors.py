"""Bad input at the API: a clear 4xx problem+json naming what and where, and nothing applied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from annuaire.config import Settings
from annuaire.http.app import create_app
from annuaire.mailboxes import operators
from tests.mailboxes.mailbox_fixtures import Env, make_env, org, per, running

A = "a.mssante.fr"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code"}


def _problem(r: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status and body["title"]
    for needle in needles:
        assert needle in body["detail"], (needle, body["detail"])
    return body


@pytest.fixture
def seeded(env: Env) -> Iterator[Env]:
    """A domain holding two boxes: every failing request below must leave them as they are."""
    assert env.put(A, [per("camille.martin"), org("accueil")]).status_code == 200
    yield env
    assert set(env.current(A)) == {f"camille.martin@{A}", f"accueil@{A}"}
    assert env.get(f"/api/v1/domains/{A}/mailboxes").headers["etag"] == '"1"'


@pytest.mark.parametrize("body,needles", [
    (b'{"mailboxes": [{"address": "x@a.mssante.fr",}]}', ["malformed JSON", "line 1", "column"]),
    (b'{"mailboxes": [\n{"address": "x"\n', ["malformed JSON", "line 3"]),
    (b"", ["malformed JSON"]),
    (b"[]", ["must be an object"]),
    (b'{"mailboxes": {}}', ["not a list"]),
    (b'{"boxes": []}', ["unknown top-level field", "'boxes'"]),
    (b'{"mailboxes": [], "extra": 1}', ["'extra'"]),
    (b'{"mailboxes": [{"address": "a@a.mssante.fr", "type": "PER"}, 3]}', ["mailboxes[1] is not an object"]),
    (b'{"mailboxes": [{"address": "a@a.mssante.fr", "typ": "PER"}]}', ["mailboxes[0]", "unknown field", "'typ'"]),
    (b'{"mailboxes": [\xff]}', ["malformed JSON"]),
])
def test_malformed_json(seeded: Env, body: bytes, needles: list[str]) -> None:
    _problem(seeded.put(A, body=body), 400, *needles)


@pytest.mark.parametrize("text,needles", [
    ("", ["header"]),
    ("Adresse BAL|Holder\n", ["unknown column 'Holder'"]),
    ("Adresse BAL|Service de rattachement\nx@a.mssante.fr|s\n", ["lacks the column", "Type de BAL"]),
    ("Type de BAL|Adresse BAL|Adresse BAL\n", ["appears twice"]),
    ("Type de BAL|Adresse BAL\nPER|x@a.mssante.fr\nPER|y@a.mssante.fr|z|w\n", ["line 3", "4 fields", "header has 2"]),
    ("Type de BAL;Adresse BAL\nPER;x@a.mssante.fr\n", ["unknown column"]),
])
def test_malformed_text(seeded: Env, text: str, needles: list[str]) -> None:
    body = _problem(seeded.put(A, body=text.encode(), content_type="text/csv"), 400, *needles)
    assert body["code"] == "ListFormatError"


def test_trailing_separator_is_tolerated(env: Env) -> None:
    text = "Type de BAL|Adresse BAL|Identification nationale PP|\nPER|camille.martin@a.mssante.fr|810000000001|\n"
    assert env.put(A, body=text.encode(), content_type="text/csv").json()["created"] == 1


def test_bad_charset(seeded: Env) -> None:
    _problem(seeded.put(A, body=b"Type de BAL|Adresse BAL\n", content_type="text/csv; charset=klingon"),
             400, "unknown charset")
    _problem(seeded.put(A, body=b"Type de BAL|Adresse BAL\nPER|\xe9@a.mssante.fr\n",
                        content_type="text/csv; charset=utf-8"), 400, "line 2", "utf-8")


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data", ""])
def test_wrong_content_type(seeded: Env, content_type: str) -> None:
    body = _problem(seeded.put(A, [per("x")], content_type=content_type), 415, "application/json", "text/csv")
    assert body["title"] == "Unsupported Media Type"


def test_credentials(seeded: Env) -> None:
    url = f"/api/v1/domains/{A}/mailboxes"
    body = b'{"mailboxes": []}'
    json = {"Content-Type": "application/json"}
    r = seeded.client.put(url, content=body, headers=json)
    _problem(r, 401, "missing credentials")
    assert r.headers["www-authenticate"].startswith("Bearer")
    _problem(seeded.client.put(url, content=body, headers={**json, "Authorization": "Basic abc"}), 401, "Bearer")
    for token in ("ann_1_wrong", "nonsense", "ann_x_y", "ann_999_abc", seeded.tokens["alpha"] + "x"):
        _problem(seeded.client.put(url, content=body, headers={**json, "Authorization": f"Bearer {token}"}),
                 401, "invalid API token")
    _problem(seeded.client.get(url), 401)
    _problem(seeded.client.get("/api/v1/domains"), 401)
    _problem(seeded.client.get(f"/api/v1/domains/{A}/history"), 401)


def test_token_rotation(store: Any) -> None:
    with make_env(store) as env:
        old = env.tokens["alpha"]
        assert env.put(A, [per("camille.martin")]).status_code == 200  # the old token is verified (and cached)
        env.tokens["alpha"] = operators.rotate_token(store, "alpha")
        assert env.put(A, [per("camille.martin")]).status_code == 200
        env.tokens["alpha"] = old
        _problem(env.put(A, []), 401, "invalid API token")


def test_other_operators_domain(seeded: Env) -> None:
    _problem(seeded.put(A, [], op="beta"), 403, "beta", A)
    _problem(seeded.get(f"/api/v1/domains/{A}/mailboxes", op="beta"), 403)
    _problem(seeded.get(f"/api/v1/domains/{A}/history", op="beta"), 403)
    _problem(seeded.put("unknown.mssante.fr", [], op="alpha"), 403, "unknown.mssante.fr")
    # Upper case or a trailing dot name the same domain.
    assert seeded.put("A.MSSANTE.FR.", [per("camille.martin"), org("accueil")]).json()["unchanged"] == 2


def test_query_parameters(seeded: Env) -> None:
    _problem(seeded.put(A, [], params={"dryrun": "true"}), 400, "unknown query parameter", "dryrun")
    _problem(seeded.put(A, [], params={"dry_run": "perhaps"}), 400, "dry_run")
    _problem(seeded.get(f"/api/v1/domains/{A}/mailboxes", params={"format": "xml"}), 400, "format")
    _problem(seeded.get(f"/api/v1/domains/{A}/history", params={"limit": "-1"}), 400, "limit")


def test_body_size_limit(store: Any) -> None:
    with make_env(store, Settings(max_body_bytes=2000)) as env:
        big = [per(f"camille.martin{i}") for i in range(100)]
        _problem(env.put(A, big), 413, "the limit is 2,000 bytes")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            yield b'{"mailboxes": ['
            for i in range(100):
                yield b'{"address": "x%d@a.mssante.fr", "type": "ORG", "structure": "1990000019"},' % i
            yield b"{}]}"

        r = env.client.put(f"/api/v1/domains/{A}/mailboxes", content=chunks(),
                           headers={"Authorization": f"Bearer {env.tokens['alpha']}", "Content-Type": "application/json"})
        _problem(r, 413, "exceeds the limit")
        assert env.current(A) == {}
        assert env.put(A, [per("camille.martin")]).status_code == 200  # small bodies still pass


def test_openapi_description(env: Env) -> None:
    r = env.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    put = spec["paths"]["/api/v1/domains/{domain}/mailboxes"]["put"]
    assert set(put["requestBody"]["content"]) == {"application/json", "text/csv", "text/plain"}
    assert {"400", "401", "403", "409", "412", "413", "415"} <= set(put["responses"])
    assert "HOLDER_UNKNOWN" in spec["info"]["description"]


def test_registered_in_the_application(store: Any) -> None:
    """`annuaire serve` assembles the API from PROVIDERS."""
    with make_env(store) as env, running(create_app(store, env.settings)) as url:
        r = httpx.put(f"{url}/api/v1/domains/{A}/mailboxes", json={"mailboxes": [per("camille.martin")]},
                      headers={"Authorization": f"Bearer {env.tokens['alpha']}"})
        assert r.status_code == 200 and r.json()["created"] == 1
        assert httpx.get(f"{url}/api/v1/openapi.json").status_code == 200


def test_unknown_paths_and_methods(env: Env) -> None:
    _problem(env.client.get("/api/v1/nothing"), 404, "/api/v1/nothing", "openapi")
    body = _problem(env.client.delete(f"/api/v1/domains/{A}/mailboxes"), 405, "DELETE", "GET", "PUT")
    assert body["code"] == "MethodNotAllowed"
    _problem(env.client.post("/api/v1/domains"), 405, "GET")


def test_store_failure_is_a_503_not_a_500() -> None:
    """The database disappears under a running server: a clean 503 problem, never a 500."""
    from annuaire.store import open_store
    from tests.pg import (
        create_pg_database,
        drop_pg_database,
        skip_or_fail_without_pg,
    )

    skip_or_fail_without_pg()
    url, name = create_pg_database()
    store = open_store(url)
    try:
        with make_env(store) as env:
            assert env.put(A, [per("camille.martin")]).status_code == 200
            drop_pg_database(name)
            body = _problem(env.put(A, [per("camille.martin")]), 503, "unavailable", "nothing was applied")
            assert body["code"] == "StoreUnavailable"
    finally:
        store.dispose()
        drop_pg_database(name)
