"""The shape of every error, at each of the four HTTP edges of one real server (annuaire.http.errors).

Operator API and extraction downloads answer application/problem+json, FHIR an
OperationOutcome for every path under /fhir/v2 (unknown paths, wrong methods,
bytes that are not UTF-8 included), the web pages a French HTML page.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from annuaire import errors
from annuaire.config import Settings
from annuaire.errors import DirectoryError
from annuaire.fhir.auth import add_key
from annuaire.fhir.cache import refresh
from annuaire.http.app import create_app
from annuaire.http.errors import STATUS, status_of
from annuaire.http.guard import server_options
from annuaire.mailboxes.client import refusal
from annuaire.mailboxes.operators import add_operator
from annuaire.store import open_store
from tests.mailboxes.mailbox_fixtures import running

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code"}
A = "a.mssante.fr"


@dataclass
class Server:
    client: httpx.Client
    token: str
    key: str
    slow_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The whole app of `annuaire serve`, over real HTTP, on an empty SQLite store."""
    tmp: Path = tmp_path_factory.mktemp("errors")
    store = open_store(f"sqlite:///{tmp / 'annuaire.sqlite'}")
    _, token = add_operator(store, "alpha", [A])
    key, slow_key = add_key(store, "test"), add_key(store, "slow", rate_limit=1)
    refresh(store)
    settings = Settings(extractions_dir=str(tmp / "extractions"), max_body_bytes=1000, fhir_max_body_bytes=1000)
    try:
        with running(create_app(store, settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield Server(client, token, key, slow_key)
    finally:
        store.dispose()


def problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert PROBLEM_KEYS <= set(body), body
    assert (body["type"], body["status"], body["code"]) == ("about:blank", status, code), body
    assert body["title"] and body["detail"] and body["instance"].startswith(("/api/v1", "/extractions"))
    return body


def outcome(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/fhir+json;charset=UTF-8"
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and len(body["issue"]) == 1, body
    issue = body["issue"][0]
    assert issue["severity"] == "error" and issue["code"] == "exception" and issue["diagnostics"]
    return issue["diagnostics"]


def page(r: httpx.Response, status: int, title: str) -> str:
    assert r.status_code == status, r.text[:200]
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="fr">' in r.text and f"<h1>{title}</h1>" in r.text, r.text[:500]
    assert r.headers["x-content-type-options"] == "nosniff"  # the site's headers
    return r.text


# --- operator API: problem+json ------------------------------------------------------------


def test_api_problems(server: Server) -> None:
    c, auth = server.client, {"Authorization": f"Bearer {server.token}"}
    body = problem(c.get("/api/v1/domains"), 401, "Unauthorized")
    assert body["parameter"] == "Authorization"
    assert c.get("/api/v1/domains").headers["www-authenticate"] == 'Bearer realm="annuaire"'
    problem(c.get("/api/v1/domains", headers={"Authorization": "Bearer ann_1_wrong"}), 401, "Unauthorized")
    problem(c.get("/api/v1/domains/c.mssante.fr/mailboxes", headers=auth), 403, "Forbidden")
    problem(c.get("/api/v1/domains", params={"x": "1"}, headers=auth), 400, "InvalidInput")
    json = {**auth, "Content-Type": "application/json"}
    body = problem(c.put(f"/api/v1/domains/{A}/mailboxes", content=b'{"mailboxes": [\n{', headers=json), 400,
                   "ListFormatError")
    assert body["line"] == 2
    problem(c.put(f"/api/v1/domains/{A}/mailboxes", content=b"<x/>",
                  headers={**auth, "Content-Type": "application/xml"}), 415, "UnsupportedMediaType")
    problem(c.put(f"/api/v1/domains/{A}/mailboxes", content=b" " * 2000, headers=json), 413, "BodyTooLarge")
    problem(c.put(f"/api/v1/domains/{A}/mailboxes", json={"mailboxes": []}, headers={**auth, "If-Match": '"7"'}),
            412, "PreconditionFailed")


def test_api_unknown_paths_and_methods(server: Server) -> None:
    c = server.client
    for path in ("/api/v1/nothing", "/api/v1", "/api/v1/domains/", "/api/v1/a%0Ab", "/api/v1/%FF%FE"):
        problem(c.get(path), 404, "NotFound")
    r = c.delete(f"/api/v1/domains/{A}/mailboxes")
    body = problem(r, 405, "MethodNotAllowed")
    assert "DELETE" in body["detail"] and {"GET", "PUT"} <= set(r.headers["allow"].split(", "))


def test_api_throttle_is_a_problem_with_retry_after(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    settings = Settings(extractions_dir=str(tmp_path), auth_failures_per_address=2)
    try:
        with running(create_app(store, settings)) as url:
            wrong = {"Authorization": "Bearer ann_1_wrong"}
            answers = [httpx.get(f"{url}/api/v1/domains", headers=wrong) for _ in range(3)]
            body = problem(answers[-1], 429, "TooManyRequests")
            assert body["parameter"] == "Authorization" and int(answers[-1].headers["retry-after"]) >= 1
    finally:
        store.dispose()


# --- FHIR: OperationOutcome, for every path under /fhir/v2 -------------------------------------


def test_fhir_outcomes(server: Server) -> None:
    c, key = server.client, {"ESANTE-API-KEY": server.key}
    assert c.get("/fhir/v2/metadata").status_code == 200
    assert "API key" in outcome(c.get("/fhir/v2/Practitioner"), 401)
    assert "_count" in outcome(c.get("/fhir/v2/Practitioner", params={"_count": "x"}, headers=key), 400)
    assert "Resource not found" in outcome(c.get("/fhir/v2/Practitioner/003-1-1", headers=key), 404)
    r = c.get("/fhir/v2/Patient", headers=key)
    assert "not supported" in outcome(r, 404) and int(r.headers["x-journal-position"]) >= 0  # errors say it too
    outcome(c.post("/fhir/v2/Practitioner/_search", content=b"name=" + b"x" * 2000, headers={
        **key, "Content-Type": "application/x-www-form-urlencoded"}), 413)
    slow = {"ESANTE-API-KEY": server.slow_key}
    answers = [c.get("/fhir/v2/Organization", headers=slow) for _ in range(3)]
    outcome(answers[-1], 429)
    assert int(answers[-1].headers["retry-after"]) >= 1


@pytest.mark.parametrize("path", [
    "/fhir/v2/Practitioner/1/2/3",  # no such route
    "/fhir/v2/",
    "/fhir/v2/Practi%0Ationer/x/y",  # a newline: Starlette's {path:path} does not match it
    "/fhir/v2/%FF%FE/%C3%28/z",  # percent-encoded bytes that are not UTF-8
])
def test_fhir_unknown_paths(server: Server, path: str) -> None:
    assert "does not know how to handle GET" in outcome(server.client.get(path), 404)


def test_fhir_wrong_methods_and_undecodable_ids(server: Server) -> None:
    c, key = server.client, {"ESANTE-API-KEY": server.key}
    r = c.post("/fhir/v2/Practitioner", headers=key)
    assert "POST is not allowed" in outcome(r, 405) and "GET" in r.headers["allow"]
    r = c.delete("/fhir/v2/metadata")
    assert "allowed: GET, HEAD" in outcome(r, 405) and r.headers["allow"] == "GET, HEAD"
    outcome(c.put("/fhir/v2/Practitioner/003-1-1", headers=key), 405)
    outcome(c.get("/fhir/v2/Practitioner/%FF%C3%28", headers=key), 404)
    outcome(c.get("/fhir/v2/%FF%FE", headers=key), 404)


def raw(url: str, target: bytes) -> tuple[bytes, bytes]:
    """A request line no client library sends (bytes outside ASCII): the answer's head and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.lower(), body


def test_request_lines_the_parser_refuses(tmp_path: Path) -> None:
    """Refused before the app by `annuaire serve`'s HTTP protocol (annuaire.http.guard), yet in the
    shape of the interface named."""
    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    settings = Settings(extractions_dir=str(tmp_path))
    try:
        with running(create_app(store, settings), **server_options(settings)) as url:
            head, body = raw(url, b"/fhir/v2/Practitioner/\xff\xfe")
            assert head.startswith(b"http/1.1 400") and b"content-type: application/fhir+json" in head, head
            assert b'"resourceType":"OperationOutcome"' in body and b"\\\\xff" in body
            for target in (b"/api/v1/domains/\xe9", b"/extractions/a b"):
                head, body = raw(url, target)
                assert head.startswith(b"http/1.1 400") and b"content-type: application/problem+json" in head, head
                assert b'"code":"InvalidInput"' in body
    finally:
        store.dispose()


# --- web pages: a French HTML page -----------------------------------------------------------------


def test_web_pages(server: Server) -> None:
    c = server.client
    for path in ("/nulle-part", "/pro/a/b", "/a%0Ab", "/%FF%FE", "/assets/absent.css", "/api", "/fhir/v3"):
        text = page(c.get(path), 404, "Page introuvable")
        assert "Revenir à la recherche" in text
    assert "aucune page" in page(c.get("/nulle-part"), 404, "Page introuvable").lower()
    r = c.post("/aide")
    assert "POST" in page(r, 405, "Méthode non autorisée") and "GET" in r.headers["allow"]
    page(c.get("/", params={"page": "x", "q": "dupont"}), 400, "Demande incorrecte")
    page(c.get("/pro/899999999999"), 404, "Page introuvable")


# --- extraction downloads: problem+json --------------------------------------------------------------


def test_extraction_problems(server: Server) -> None:
    c = server.client
    assert "generated" in problem(c.get("/extractions/Extraction_Correspondance_MSSante"), 404, "NotFound")["detail"]
    for path in ("/extractions/PS_LibreAcces_209901010000.zip", "/extractions/Nope", "/extractions/a/b",
                 "/extractions/..%2F..%2Fetc%2Fpasswd"):
        problem(c.get(path), 404, "NotFound")
    r = c.post("/extractions/")
    assert problem(r, 405, "MethodNotAllowed") and "GET" in r.headers["allow"]
    assert c.get("/extractions/").status_code == 200


# --- the tree and the one mapping -----------------------------------------------------------------


def _tree() -> list[type[DirectoryError]]:
    found, todo = [], [DirectoryError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_lives_in_errors_with_a_unique_code() -> None:
    """Domain modules raise classes of the tree; none defines its own (the edges are imported above)."""
    tree = _tree()
    assert {cls.__module__ for cls in tree} == {"annuaire.errors"}
    assert set(tree) == {c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, DirectoryError)}
    codes = [cls.code for cls in tree if cls is not errors.BadToken]  # BadToken answers as Unauthorized
    assert len(codes) == len(set(codes))
    for cls in tree:
        assert errors.by_code(cls.code) is (errors.Unauthorized if cls is errors.BadToken else cls)


@pytest.mark.parametrize("cls,status", [
    (errors.InvalidInput, 400), (errors.ImportFileError, 400), (errors.Unauthorized, 401), (errors.BadToken, 401),
    (errors.Forbidden, 403), (errors.NotFound, 404), (errors.MethodNotAllowed, 405), (errors.MassDeletion, 409),
    (errors.Gone, 410), (errors.PreconditionFailed, 412), (errors.BodyTooLarge, 413),
    (errors.UnsupportedMediaType, 415), (errors.TooManyConnections, 429), (errors.InternalError, 500),
    (errors.DirectoryError, 500), (errors.StoreUnavailable, 503), (errors.SourceUnavailable, 503),
])
def test_status_of_each_class(cls: type[DirectoryError], status: int) -> None:
    assert status_of(errors.rebuild(cls.code, "x", cls)) == status
    assert cls in STATUS or any(base in STATUS for base in cls.__mro__[1:])


@pytest.mark.parametrize("status,body,expected,exit_code", [
    (401, {"code": "TokenExpired", "detail": "expired on 2025-12-31"}, errors.TokenExpired, 4),
    (401, {"code": "Unauthorized", "detail": "invalid API token"}, errors.Unauthorized, 4),
    (409, {"code": "MassDeletion", "detail": "would delete 90 %", "deleted": 90}, errors.MassDeletion, 5),
    (412, {"code": "PreconditionFailed", "detail": "version 3"}, errors.PreconditionFailed, 5),
    (400, {"code": "ListFormatError", "detail": "line 2", "line": 2}, errors.ListFormatError, 2),
    (503, {"code": "StoreUnavailable", "detail": "retry later"}, errors.StoreUnavailable, 6),
    (413, {"detail": "a proxy's limit"}, errors.BodyTooLarge, 2),  # no code: the status's class
    (502, None, errors.DirectoryError, 1),  # not even JSON
])
def test_client_rebuilds_the_class_from_the_code(status: int, body: dict | None, expected: type, exit_code: int) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="Bad Gateway")
    error = refusal(response)
    assert type(error) is expected and error.exit_code == exit_code
    assert error.message.startswith(f"{status}: ")


def test_exceptions_from_below_are_mapped_once(caplog: pytest.LogCaptureFixture) -> None:
    """A bug, the database or a client gone: the tree's class, in the edge's shape (logged when unexpected)."""
    from sqlalchemy.exc import OperationalError
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.routing import Route

    from annuaire.http.errors import Edge, FrenchPage, Outcome, Problem

    raised: dict[str, BaseException] = {"bug": KeyError("x"), "store": OperationalError("SELECT 1", {}, Exception("gone")),
                                        "gone": ClientDisconnect()}

    async def fail(request):  # type: ignore[no-untyped-def]
        raise raised[request.path_params["what"]]

    def french(request, status, title, message):  # type: ignore[no-untyped-def]
        from starlette.responses import HTMLResponse

        return HTMLResponse(f'<html lang="fr"><h1>{title}</h1><p>{message}</p>', status)

    app = Starlette(routes=[
        Edge("/api/v1", [Route("/api/v1/{what}", fail)], Problem(), not_found="none"),
        Edge("/fhir/v2", [Route("/fhir/v2/{what}", fail)], Outcome(), not_found="none"),
        Edge("/", [Route("/{what}", fail)], FrenchPage(french), not_found="rien"),
    ])
    with running(app) as url, httpx.Client(base_url=url) as client, caplog.at_level("INFO", "annuaire.http"):
        assert problem(client.get("/api/v1/bug"), 500, "InternalError")["detail"].startswith("unexpected")
        assert "KeyError" in caplog.text
        problem(client.get("/api/v1/store"), 503, "StoreUnavailable")
        problem(client.get("/api/v1/gone"), 400, "ClientDisconnect")
        assert outcome(client.get("/fhir/v2/bug"), 500) == "Unknown error"
        assert "unavailable" in outcome(client.get("/fhir/v2/store"), 503)
        r = client.get("/bug")
        assert r.status_code == 500 and "<h1>Erreur</h1>" in r.text and "inattendue" in r.text
        r = client.get("/store")
        assert r.status_code == 503 and "Service indisponible" in r.text
