"""Slow and greedy HTTP clients (annuaire.http.guard), with real sockets against the real app:
connections that send nothing, request lines, headers or bodies trickled byte by byte, many
idle connections from one address, oversized headers. Each is closed or refused after its
(small, configured) delay while a normal client keeps being served quickly."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import httpx
import pytest

from annuaire.config import Settings
from annuaire.http.app import create_app
from annuaire.http.guard import server_options
from annuaire.mailboxes.operators import add_operator
from annuaire.store import Store
from tests.mailboxes.mailbox_fixtures import running

TIMEOUT = 0.5  # seconds (default 10)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from annuaire.store import open_store

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('guard') / 'annuaire.sqlite'}")
    _, store.token = add_operator(store, "alpha", ["a.mssante.fr"])  # type: ignore[attr-defined]
    yield store
    store.dispose()


def serve(store: Store, base: Any = None, **limits: Any) -> Any:
    settings = Settings(extractions_dir=str(store.url.rsplit("/", 1)[0].removeprefix("sqlite:///")), **{
        "http_request_timeout": TIMEOUT, "http_body_min_rate": 100, "http_idle_timeout": 60.0, **limits})
    return running(create_app(store, settings), **server_options(settings, base=base))


def connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5, source_address=(source, 0))
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """(the server closed the connection within `seconds`, what it sent before)."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
        return True, received
    except ConnectionResetError:
        return True, received
    except TimeoutError:
        return False, received


def trickle(sock: socket.socket, data: bytes, pause: float, stop: threading.Event) -> None:
    try:
        for byte in data:
            if stop.is_set():
                return
            sock.send(bytes([byte]))
            time.sleep(pause)
    except OSError:
        pass  # closed by the server: what we wanted


class Normal:
    """A well-behaved client requesting a page in a loop: its slowest answer and its failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.answers: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                self.answers.append(client.get("/fhir/v2/metadata").status_code)
                self.slowest = max(self.slowest, time.perf_counter() - started)
                time.sleep(0.01)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.parametrize("protocol", ["httptools", "h11"])
def test_slow_clients_are_closed_while_a_normal_client_is_served(sqlite_store: Store, protocol: str) -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    base = H11Protocol if protocol == "h11" else HttpToolsProtocol
    with serve(sqlite_store, base=base) as url, Normal(url) as normal:
        stop = threading.Event()
        silent = [connect(url) for _ in range(5)]
        line = [connect(url) for _ in range(5)]  # the request line, a byte every 50 ms
        heads = [connect(url) for _ in range(5)]  # complete line, headers trickled
        bodies = [connect(url) for _ in range(5)]  # complete head, a publication's body at 20 B/s (< 100 B/s)
        for s in heads:
            s.send(b"GET /aide HTTP/1.1\r\nHost: x\r\n")
        for s in bodies:
            s.send(b"PUT /api/v1/domains/a.mssante.fr/mailboxes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Authorization: Bearer " + sqlite_store.token.encode() + b"\r\nContent-Length: 5000\r\n\r\n")
        threads = [threading.Thread(target=trickle, args=(s, b"GET /aide HTTP/1.1\r\nHost: x\r\n\r\n", 0.05, stop))
                   for s in line]
        threads += [threading.Thread(target=trickle, args=(s, b"X-Slow: " + b"y" * 200, 0.05, stop)) for s in heads]
        threads += [threading.Thread(target=trickle, args=(s, b'{"mailboxes": [' + b" " * 500, 0.05, stop)) for s in bodies]
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            for kind, group in (("silent", silent), ("request line", line), ("headers", heads), ("body", bodies)):
                for s in group:
                    closed, received = closed_within(s, started + TIMEOUT + 2.0 - time.monotonic())
                    assert closed, f"{kind}: still open after {time.monotonic() - started:.1f} s"
                    assert received == b"" or received.startswith(b"HTTP/1.1 408"), (kind, received[:80])
            assert time.monotonic() - started < TIMEOUT + 2.0
        finally:
            stop.set()
            for t in threads:
                t.join()
            for s in silent + line + heads + bodies:
                s.close()
        time.sleep(0.2)
    assert normal.answers and set(normal.answers) == {200}, normal.answers
    assert normal.slowest < 0.5, normal.slowest


def test_many_idle_connections_from_one_address_are_capped(sqlite_store: Store) -> None:
    with serve(sqlite_store, http_max_connections_per_address=10, http_request_timeout=30.0) as url:
        idle = [connect(url) for _ in range(10)]
        time.sleep(0.2)
        try:
            r = httpx.get(f"{url}/fhir/v2/metadata")
            assert r.status_code == 429 and r.headers["connection"] == "close", r.text
            assert r.headers["content-type"].startswith("application/fhir+json")
            assert "too many connections" in r.json()["issue"][0]["diagnostics"]
            assert httpx.get(f"{url}/aide").status_code == 429
            # Another address is not concerned.
            with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
                assert other.get(f"{url}/aide").status_code == 200
        finally:
            for s in idle:
                s.close()
        time.sleep(0.2)
        assert httpx.get(f"{url}/aide").status_code == 200  # closed connections no longer count


def test_idle_keep_alive_connections_are_closed(sqlite_store: Store) -> None:
    with serve(sqlite_store, http_idle_timeout=0.5) as url:
        sock = connect(url)
        sock.send(b"GET /fhir/v2/metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        closed, _ = closed_within(sock, 2.0)
        assert closed
        sock.close()


def test_oversized_headers_are_refused(sqlite_store: Store) -> None:
    with serve(sqlite_store, http_max_header_bytes=4096) as url:
        with connect(url) as sock:  # in one piece
            sock.sendall(b"GET /aide HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
            closed, received = closed_within(sock, 2.0)
            assert closed and received.startswith(b"HTTP/1.1 431"), received[:60]
        with connect(url) as sock:  # streamed, never ending
            sock.sendall(b"GET /aide HTTP/1.1\r\nHost: x\r\n")
            try:
                for _ in range(10):
                    sock.sendall(b"X-Big: " + b"a" * 1000 + b"\r\n")
                    time.sleep(0.01)
            except OSError:
                pass
            closed, received = closed_within(sock, 2.0)
            assert closed and (received == b"" or received.startswith(b"HTTP/1.1 431")), received[:60]
        assert httpx.get(f"{url}/aide", headers={"X-Small": "a" * 1000}).status_code == 200


def test_a_body_nobody_reads_closes_the_connection(sqlite_store: Store) -> None:
    """A page answered while its (unwanted) body is still coming: the connection is closed
    after the answer, rather than reading the rest of a body announced as 1 GB."""
    with serve(sqlite_store) as url, connect(url) as sock:
        sock.sendall(b"GET /aide HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 1000)
        closed, received = closed_within(sock, 2.0)
        assert closed and received.startswith(b"HTTP/1.1 200"), received[:60]
