"""Operator tokens: stored as a keyed HMAC, former scrypt hashes upgraded at their next use,
expiry dates, last use recorded once a minute, failed authentications throttled per client
address and per operator (429 + Retry-After, logged) without slowing the others."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from annuaire.cli import cli
from annuaire.config import Settings
from annuaire.errors import TooManyRequests, Unauthorized
from annuaire.mailboxes import operators
from annuaire.store import credentials
from annuaire.store.schema import operator
from tests.mailboxes.mailbox_fixtures import Env, make_env

WRONG = "ann_1_" + "x" * 43  # names operator alpha (id 1), wrong secret


def _hash(store: Any, name: str) -> str:
    with store.read() as conn:
        return conn.execute(select(operator.c.token_hash).where(operator.c.name == name)).scalar_one()


def _as(env: Env, token: str, address: str = "10.0.0.1") -> httpx.Response:
    return env.client.get("/api/v1/domains", headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": address})


def test_tokens_are_stored_as_a_keyed_hmac(env: Env) -> None:
    stored = _hash(env.store, "alpha")
    assert stored.startswith("hmac-sha256$") and len(stored) == len("hmac-sha256$") + 64
    with env.store.read() as conn:
        key = credentials.server_key(conn)
    assert credentials.matches(key, env.tokens["alpha"], stored)
    assert not credentials.matches(key, env.tokens["beta"], stored)
    assert _as(env, env.tokens["alpha"]).status_code == 200


def test_a_former_scrypt_hash_keeps_working_and_is_upgraded_at_its_next_use(store: Any) -> None:
    with make_env(store) as env:
        token = env.tokens["alpha"]
        with store.write() as conn:  # as an earlier version stored it
            conn.execute(update(operator).where(operator.c.name == "alpha").values(token_hash=operators.hash_token(token)))
        assert _hash(store, "alpha").startswith("scrypt$")
        assert _as(env, WRONG).status_code == 401
        assert _hash(store, "alpha").startswith("scrypt$")  # a wrong token changes nothing
        assert _as(env, token).status_code == 200
        credentials.writer.join()
        assert _hash(store, "alpha").startswith("hmac-sha256$")
        operators._verified._seen.clear()  # no cache: the HMAC form alone authenticates
        assert _as(env, token).status_code == 200
        assert _as(env, WRONG).status_code == 401


def test_an_expired_token_is_refused_saying_so(env: Env) -> None:
    with env.store.write() as conn:
        conn.execute(update(operator).where(operator.c.name == "alpha").values(token_expires_at="2026-01-01T00:00:00.000000Z"))
    try:
        r = _as(env, env.tokens["alpha"])
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "TokenExpired" and "expired on 2025-12-31" in body["detail"], body
        assert "operator rotate" in body["detail"]
    finally:
        with env.store.write() as conn:
            conn.execute(update(operator).where(operator.c.name == "alpha").values(token_expires_at=None))
    assert _as(env, env.tokens["alpha"]).status_code == 200


def test_last_use_is_recorded_at_most_once_a_minute(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    record = operators._record_use
    monkeypatch.setattr(operators, "_last_use", credentials.LastUse())
    monkeypatch.setattr(operators, "_record_use", lambda conn, op_id: (writes.append(op_id), record(conn, op_id)))
    with make_env(store) as env:
        for _ in range(20):
            assert _as(env, env.tokens["alpha"]).status_code == 200
        credentials.writer.join()
        assert writes == [1]
        with store.read() as conn:
            used = conn.execute(select(operator.c.token_last_used).where(operator.c.id == 1)).scalar_one()
        assert used is not None and used[:10] == time.strftime("%Y-%m-%d", time.gmtime())


def test_failed_authentications_are_throttled_per_address(store: Any, caplog: pytest.LogCaptureFixture) -> None:
    with make_env(store, Settings(auth_failures_per_address=5, auth_failures_per_operator=0)) as env:
        for _ in range(5):
            assert _as(env, WRONG, "10.0.0.1").status_code == 401
        with caplog.at_level(logging.WARNING, logger="annuaire.http"):
            r = _as(env, WRONG, "10.0.0.1")
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert 1 <= int(r.headers["retry-after"]) <= 13  # 5 a minute: one more every 12 s
        assert r.json()["parameter"] == "Authorization" and "failed authentications" in r.json()["detail"]
        assert any("10.0.0.1" in m for m in caplog.messages), caplog.messages
        # The address is refused before its credentials are looked at, even the right ones...
        assert _as(env, env.tokens["alpha"], "10.0.0.1").status_code == 429
        # ... and nobody else is affected.
        assert _as(env, env.tokens["alpha"], "10.0.0.2").status_code == 200
        assert _as(env, WRONG, "10.0.0.2").status_code == 401


def test_wrong_tokens_naming_one_operator_are_throttled_whatever_their_address(store: Any) -> None:
    with make_env(store, Settings(auth_failures_per_address=0, auth_failures_per_operator=5)) as env:
        codes = [_as(env, WRONG, f"10.0.1.{n}").status_code for n in range(8)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
        assert _as(env, env.tokens["alpha"], "10.0.1.99").status_code == 200  # its right token still works
        assert _as(env, "ann_2_" + "x" * 43, "10.0.1.1").status_code == 401  # other operators are not concerned


def test_a_flood_of_wrong_tokens_does_not_slow_the_others(store: Any) -> None:
    """8 connections sending wrong tokens as fast as they can: they are refused cheaply (429 after
    the address's budget), and an operator from another address keeps being served."""
    with make_env(store, Settings(auth_failures_per_address=20)) as env:
        stop = threading.Event()
        refused = []

        def flood() -> None:
            with httpx.Client(base_url=env.url) as c:
                while not stop.is_set():
                    r = c.get("/api/v1/domains", headers={"Authorization": f"Bearer {WRONG}",
                                                          "X-Forwarded-For": "192.0.2.66"})
                    refused.append(r.status_code)

        threads = [threading.Thread(target=flood) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            slowest = 0.0
            for _ in range(30):
                started = time.perf_counter()
                assert _as(env, env.tokens["alpha"], "10.0.0.7").status_code == 200
                slowest = max(slowest, time.perf_counter() - started)
        finally:
            stop.set()
            for t in threads:
                t.join()
        # 20 a minute, give or take the 8 requests in flight when the budget ran out
        assert refused.count(401) <= 20 + 8 + 1 and refused.count(429) > 100, (refused.count(401), refused.count(429))
        assert slowest < 1.0, slowest


def test_a_failed_authentication_costs_microseconds(store: Any) -> None:
    """HMAC-SHA-256 instead of scrypt: measured ~20 µs a wrong token (store read included)
    against ~40 ms of scrypt; and a throttled operator's former scrypt hash is not computed."""
    with make_env(store) as env:
        with store.read() as conn:
            started = time.process_time()
            for _ in range(200):
                with pytest.raises(Unauthorized):
                    operators.authenticate_token(conn, WRONG)
            spent = time.process_time() - started
        assert spent < 0.5, f"{spent / 200 * 1e6:.0f} µs a wrong token"
        with store.write() as conn:
            conn.execute(update(operator).where(operator.c.name == "alpha").values(
                token_hash=operators.hash_token(env.tokens["alpha"])))
        with store.read() as conn:
            started = time.process_time()
            with pytest.raises(TooManyRequests):
                operators.authenticate_token(conn, WRONG, slow_allowed=lambda op_id: False)
            assert time.process_time() - started < 0.01


def test_expiry_and_last_use_on_the_command_line(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operators, "_last_use", credentials.LastUse())  # operator 1 of other tests' stores

    def run(*args: str) -> Any:
        return CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["--db", store.url, *args], catch_exceptions=False)

    r = run("operator", "add", "CH Exemple", "--domain", "ch-exemple.mssante.fr", "--expires", "2099-12-31")
    assert r.exit_code == 0 and "expires: 2099-12-31 (end of day, UTC)" in r.stderr, r.output
    token = r.stdout.strip()
    with store.read() as conn:
        assert conn.execute(select(operator.c.token_expires_at)).scalar_one() == "2100-01-01T00:00:00.000000Z"
        operators.authenticate_token(conn, token)
    credentials.writer.join()
    assert "2099-12-31" in run("operator", "list").stderr
    r = run("operator", "rotate", "CH Exemple", "--expires", "2099-06-30T12:00:00+02:00")
    assert r.exit_code == 0 and "was last used: 20" in r.stderr and "2099-06-30 10:00:00 UTC" in r.stderr, r.output
    assert "last used: never" in run("operator", "rotate", "CH Exemple").stderr.replace("was last used", "last used")
    r = run("operator", "rotate", "CH Exemple", "--expires", "2001-01-01")
    assert r.exit_code == 2 and "already past" in r.stderr
    r = run("operator", "add", "Autre", "--domain", "autre.mssante.fr", "--expires", "demain")
    assert r.exit_code == 2 and "not a date" in r.stderr
    assert run("operator", "token", "CH Exemple").exit_code == 0  # the former name of rotate

