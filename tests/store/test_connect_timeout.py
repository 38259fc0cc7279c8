"""A PostgreSQL server that accepts the connection and never answers (a stuck proxy, a host gone
behind a firewall that still completes the handshake) fails within `CONNECT_TIMEOUT`, rather than
holding forever: the start-up check of `serve --read-db` (a clear error naming the URL, password
hidden), the engines of a store (primary and replica), and the replica's watch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from annuaire.errors import DirectoryError
from annuaire.store import open_store, replica
from annuaire.store.engine import CONNECT_TIMEOUT
from tests.pg import PG_ADMIN_URL, create_pg_database, drop_pg_database, skip_or_fail_without_pg
from tests.pgcluster import free_port

SLACK = 3.0  # seconds beyond the timeout for the error to come back (a loaded machine)


@pytest.fixture
def silent() -> Iterator[str]:
    """The URL (with a password) of a socket that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    kept: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                kept.append(server.accept()[0])
            except OSError:  # closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"postgresql+psycopg://annuaire:s3cret@127.0.0.1:{server.getsockname()[1]}/annuaire"
    server.close()
    for conn in kept:
        conn.close()


def timed(action: Callable[[], Any]) -> tuple[float, BaseException | None]:
    """How long `action` took (run in a thread: it may never return), and what it raised."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised[0] = exc

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT + SLACK)
    assert not thread.is_alive(), f"still waiting after {CONNECT_TIMEOUT + SLACK} s"
    return time.monotonic() - start, raised[0]


def test_the_start_up_check_names_a_replica_that_never_answers(silent):
    took, raised = timed(lambda: replica.check(PG_ADMIN_URL, silent))
    assert isinstance(raised, DirectoryError), raised
    message = str(raised)
    assert f"cannot reach --read-db {silent.replace('s3cret', '***')}: no answer within {CONNECT_TIMEOUT} s" in message
    assert "s3cret" not in message
    assert took >= CONNECT_TIMEOUT - 0.5  # (it did wait for the timeout: the socket accepted)


def test_a_store_whose_server_never_answers_fails_within_the_timeout(silent):
    store = open_store(silent, upgrade=False)
    try:
        def read() -> None:
            with store.read() as conn:
                conn.exec_driver_sql("SELECT 1")

        _, raised = timed(read)
        assert raised is not None and "timeout" in str(raised), raised
    finally:
        store.dispose()


@pytest.mark.postgres
def test_the_watch_of_a_replica_that_never_answers_gives_a_reason_within_the_timeout(silent):
    skip_or_fail_without_pg()
    store = open_store(PG_ADMIN_URL, upgrade=False, read_url=silent)
    try:
        watch = replica.Watch(store)
        _, raised = timed(watch.check)
        assert raised is None, raised
        reason = watch.unavailable()
        assert reason is not None and "does not answer" in reason, reason
    finally:
        store.dispose()


@pytest.mark.postgres
def test_serve_refuses_a_replica_that_never_answers(silent, tmp_path):
    skip_or_fail_without_pg()
    url, name = create_pg_database("annuaire_timeout")
    try:
        open_store(url).dispose()  # a store at the code's schema: serve then looks at --read-db
        env = {**os.environ, "ANNUAIRE_EXTRACTIONS_TIME": "off", "ANNUAIRE_EXTRACTIONS_DIR": str(tmp_path)}
        env.pop("ANNUAIRE_READ_DB", None)
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "annuaire", "--db", url, "serve", "--read-db", silent,
                               "--http-port", str(free_port()), "--ldap-port", "0"],
                              capture_output=True, text=True, timeout=60, env=env)
        took = time.monotonic() - start
    finally:
        drop_pg_database(name)
    assert done.returncode != 0
    assert f"cannot reach --read-db {silent.replace('s3cret', '***')}: no answer within" in done.stderr, done.stderr
    assert "s3cret" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert "Web search page" not in done.stderr + done.stdout  # refused before announcing anything
    assert took < CONNECT_TIMEOUT + 20, took  # (the start of a Python process included)
