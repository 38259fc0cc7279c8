"""API keys (issued by the real command line), 401, the rate limit (429),
and the error shape of every failure."""

from __future__ import annotations

import time

import httpx
from click.testing import CliRunner

from fhir_server import serve

from annuaire.cli import cli
from annuaire.config import Settings


def outcome_ok(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/fhir+json;charset=UTF-8"
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and len(body["issue"]) == 1
    issue = body["issue"][0]
    assert issue["severity"] == "error" and issue["code"] == "exception" and issue["diagnostics"]
    return issue["diagnostics"]


def test_keys_from_the_command_line(fresh_api):
    api = fresh_api
    runner = CliRunner()
    db = ["--db", api.store.url]
    result = runner.invoke(cli, [*db, "apikey", "add", "Logiciel fictif", "--rate-limit", "50"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("ak_")
    listing = runner.invoke(cli, [*db, "apikey", "list"])
    assert "Logiciel fictif" in listing.output and key not in listing.output
    again = runner.invoke(cli, [*db, "apikey", "add", "Logiciel fictif"])
    assert again.exit_code != 0 and "already exists" in again.output
    with httpx.Client(base_url=api.base, headers={"ESANTE-API-KEY": key}) as c:
        assert c.get("/Practitioner", params={"_count": "1"}).status_code == 200
    assert runner.invoke(cli, [*db, "apikey", "revoke", "Logiciel fictif"]).exit_code == 0
    assert runner.invoke(cli, [*db, "apikey", "revoke", "Inconnu"]).exit_code != 0
    time.sleep(2.1)  # the server's key cache
    with httpx.Client(base_url=api.base, headers={"ESANTE-API-KEY": key}) as c:
        outcome_ok(c.get("/Practitioner"), 401)


def test_missing_or_wrong_key_is_401(api):
    with api.client(key=None) as c:
        assert "ESANTE-API-KEY" in outcome_ok(c.get("/Practitioner"), 401)
        outcome_ok(c.get(f"/Practitioner/003-{api.data['bene']}-{api.data['bene']}"), 401)
    with api.client(key="ak_wrong") as c:
        outcome_ok(c.get("/Practitioner"), 401)
        outcome_ok(c.post("/Practitioner/_search", data={}), 401)


def test_rate_limit_is_429(fresh_api):
    for api in serve(fresh_api.store, fresh_api.data, Settings(fhir_rate_limit=5.0)):
        with api.client() as c:
            codes = [c.get("/Practitioner", params={"_count": "1", "_total": "none"}).status_code for _ in range(12)]
            assert codes[:5] == [200] * 5 and 429 in codes
            r = c.get("/Practitioner")
            if r.status_code == 429:
                outcome_ok(r, 429)
                assert r.headers["retry-after"] == "1"
            time.sleep(1.1)
            assert c.get("/Practitioner", params={"_count": "1"}).status_code == 200


def test_error_shapes(api):
    assert "Parameter foo not found for resource Organization" == outcome_ok(api.get("/Organization", params={"foo": "x"}), 400)
    outcome_ok(api.get("/Organization/001-03-1"), 404)
    outcome_ok(api.get("/Organization/001-01-999999"), 404)
    with api.client() as c:
        outcome_ok(c.post("/Practitioner/_search", content=b"{}", headers={"content-type": "application/json"}), 400)


def test_served_by_the_annuaire_http_app(fresh_api):
    """`annuaire serve` assembles /fhir/v2 with the other interfaces."""
    from fhir_server import ServerThread

    from annuaire.http.app import create_app

    with ServerThread(create_app(fresh_api.store, Settings())) as server:
        base = f"http://127.0.0.1:{server.port}/fhir/v2"
        assert httpx.get(f"{base}/metadata").json()["resourceType"] == "CapabilityStatement"
        r = httpx.get(f"{base}/Practitioner", params={"family": "testdupont"}, headers={"ESANTE-API-KEY": fresh_api.key})
        assert r.status_code == 200 and r.json()["total"] == 1
        assert r.json()["entry"][0]["fullUrl"].startswith(base + "/Practitioner/003-")
