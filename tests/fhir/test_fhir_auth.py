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


def test_keys_expire_and_their_last_use_is_recorded(fresh_api):
    from sqlalchemy import select, update

    from annuaire.fhir import auth
    from annuaire.store import credentials
    from annuaire.store.schema import api_key

    api = fresh_api
    key = auth.add_key(api.store, "Expirante", expires="2099-12-31")
    with api.store.read() as conn:
        row = conn.execute(select(api_key).where(api_key.c.name == "Expirante")).mappings().one()
    assert row["key_hash"].startswith("hmac-sha256$") and row["expires_at"] == "2100-01-01T00:00:00.000000Z"
    time.sleep(2.1)  # the server's key cache
    with httpx.Client(base_url=api.base, headers={"ESANTE-API-KEY": key}) as c:
        assert c.get("/Practitioner", params={"_count": "1"}).status_code == 200
    credentials.writer.join()
    assert auth.revoke_key(api.store, "Expirante").last_used_at is not None
    with api.store.write() as conn:
        conn.execute(update(api_key).where(api_key.c.name == "Expirante").values(
            active=True, expires_at="2026-01-01T00:00:00.000000Z"))
    time.sleep(2.1)
    with httpx.Client(base_url=api.base, headers={"ESANTE-API-KEY": key}) as c:
        assert "expired on 2025-12-31" in outcome_ok(c.get("/Practitioner"), 401)
    runner = CliRunner()
    listing = runner.invoke(cli, ["--db", api.store.url, "apikey", "list"], env={"COLUMNS": "250"})
    assert "expired" in listing.output and "2025-12-31" in listing.output, listing.output
    revoked = runner.invoke(cli, ["--db", api.store.url, "apikey", "revoke", "Expirante"])
    assert "last used: 20" in revoked.output, revoked.output


def test_wrong_keys_are_throttled_per_address(fresh_api):
    for api in serve(fresh_api.store, fresh_api.data, Settings(fhir_rate_limit=1000.0, auth_failures_per_address=3)):
        with api.client(key="ak_" + "x" * 43) as c:
            here = {"X-Forwarded-For": "10.9.9.9"}
            assert [c.get("/Practitioner", headers=here).status_code for _ in range(3)] == [401] * 3
            r = c.get("/Practitioner", headers=here)
            assert "failed authentications" in outcome_ok(r, 429)
            assert 1 <= int(r.headers["retry-after"]) <= 21
            outcome_ok(c.get("/Practitioner", headers={"X-Forwarded-For": "10.9.9.10"}), 401)  # another address
        with api.client() as c:
            assert c.get("/Practitioner", headers={"X-Forwarded-For": "10.9.9.9"}).status_code == 429
            assert c.get("/Practitioner", params={"_count": "1"},
                         headers={"X-Forwarded-For": "10.9.9.11"}).status_code == 200


def test_post_search_body_is_limited(fresh_api):
    for api in serve(fresh_api.store, fresh_api.data, Settings(fhir_rate_limit=1000.0, fhir_max_body_bytes=1000)):
        with api.client() as c:
            outcome_ok(c.post("/Practitioner/_search", data={"family": "x" * 2000}), 413)
            assert c.post("/Practitioner/_search", data={"family": "testdupont"}).status_code == 200
