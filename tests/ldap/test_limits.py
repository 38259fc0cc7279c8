"""The anti-extraction limits trigger with the right result codes (real server, 2 workers)."""

from __future__ import annotations

import socket
import time

import pytest
from ldap_support import HAVE_LDAPSEARCH, SUFFIX, ldapsearch, start_server, stop_server

from annuaire.ldap import ber
from annuaire.ldap import messages as m
from annuaire.ldap.filters import parse

ldap3 = pytest.importorskip("ldap3")


@pytest.fixture(scope="module")
def budget_server(sqlite_world, tmp_path_factory):  # type: ignore[no-untyped-def]
    url, world = sqlite_world
    server = start_server(url, tmp_path_factory.mktemp("budget"), world, tls=False,
                          limits={"entries_per_minute": 25})
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def tight_server(sqlite_world, tmp_path_factory):  # type: ignore[no-untyped-def]
    url, world = sqlite_world
    server = start_server(url, tmp_path_factory.mktemp("tight"), world, tls=False, limits={
        "max_connections_per_address": 3, "idle_timeout": 1.5, "max_request_bytes": 2048,
        "anonymous_paged_cap": 12, "anonymous_size_limit": 8})
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def slow_server(sqlite_world, tmp_path_factory):  # type: ignore[no-untyped-def]
    url, world = sqlite_world
    server = start_server(url, tmp_path_factory.mktemp("slow"), world, tls=False, workers=1,
                          limits={"time_limit": 0.000001, "failed_bind_delay": 0, "failed_binds_per_minute": 2})
    yield server
    stop_server(server)


def search_request(mid: int, filt: str, size: int = 0) -> bytes:
    req = m.SearchRequest(SUFFIX, 2, 0, size, 0, False, parse(filt), ["mail"])
    return m.encode_message(m.LDAPMessage(mid, req))


def read_messages(sock: socket.socket, until_done: bool = True, timeout: float = 5) -> list[m.LDAPMessage]:
    sock.settimeout(timeout)
    buf = b""
    out: list[m.LDAPMessage] = []
    while True:
        while (size := ber.frame_length(buf, 1 << 24)) is not None:
            out.append(m.decode_message(buf[:size]))
            buf = buf[size:]
        if out and until_done and isinstance(out[-1].op, (m.SearchResultDone, m.ExtendedResponse)):
            return out
        chunk = sock.recv(65536)
        if not chunk:
            return out
        buf += chunk


def test_entries_per_minute_budget_shared_by_workers(budget_server) -> None:  # type: ignore[no-untyped-def]
    """The burst budget (25 new entries a minute) counts only entries new to the network."""
    results = []
    for filt in ("(mail=*medecin*)", "(mail=*medecin*)", "(mail=*pharmacie*)", "(mail=*hopital*)"):
        # New connections: the kernel may send each to another worker.
        conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=budget_server.port, get_info=ldap3.NONE),
                                auto_bind=True)
        conn.search(SUFFIX, filt, attributes=["mail"], size_limit=20)
        results.append((len(conn.entries), conn.result["result"], conn.result["message"]))
        conn.unbind()
    assert results[0][:2] == (20, 4)  # sizeLimitExceeded (client's 20)
    assert results[1][:2] == (20, 4)  # the same entries again: free
    assert results[2][0] == 5 and results[2][1] == 11  # the budget (25/min) truncates: adminLimitExceeded
    assert results[3][0] == 0 and results[3][1] == 11
    assert "retry in" in results[3][2] and "extraction files" in results[3][2]
    assert "nouvelles entrées" in results[3][2]


def test_connections_per_address(tight_server) -> None:  # type: ignore[no-untyped-def]
    server = ldap3.Server("127.0.0.1", port=tight_server.port, get_info=ldap3.NONE)
    conns = [ldap3.Connection(server, auto_bind=True) for _ in range(3)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", tight_server.port))
    msgs = read_messages(extra, until_done=False)
    assert msgs and msgs[0].message_id == 0 and msgs[0].op.name == m.OID_NOTICE_OF_DISCONNECTION
    assert msgs[0].op.result.code == m.UNAVAILABLE and "too many connections" in msgs[0].op.result.message
    extra.close()
    conns[0].unbind()
    time.sleep(0.3)
    again = ldap3.Connection(server, auto_bind=True)
    assert again.search(SUFFIX, "(sn=dupond)", attributes=["mail"])
    for c in (*conns[1:], again):
        c.unbind()


def test_idle_timeout(tight_server) -> None:  # type: ignore[no-untyped-def]
    time.sleep(0.5)
    sock = socket.create_connection(("127.0.0.1", tight_server.port))
    started = time.monotonic()
    msgs = read_messages(sock, until_done=False, timeout=10)
    waited = time.monotonic() - started
    assert 1.0 <= waited < 5
    assert msgs[0].op.name == m.OID_NOTICE_OF_DISCONNECTION and "idle" in msgs[0].op.result.message
    sock.close()


def test_request_size_and_malformed_packets_close_one_connection(tight_server) -> None:  # type: ignore[no-untyped-def]
    good = socket.create_connection(("127.0.0.1", tight_server.port))
    big = socket.create_connection(("127.0.0.1", tight_server.port))
    big.sendall(b"\x30\x84\x00\x10\x00\x00")  # announces 1 MiB > 2 KiB
    msgs = read_messages(big, until_done=False)
    assert msgs[0].op.result.code == m.PROTOCOL_ERROR and "exceeds" in msgs[0].op.result.message
    assert big.recv(10) == b""
    big.close()
    bad = socket.create_connection(("127.0.0.1", tight_server.port))
    bad.sendall(b"\x30\x05\x02\x01\x01\x63\x00")  # empty SearchRequest
    msgs = read_messages(bad, until_done=False)
    assert msgs[0].op.result.code == m.PROTOCOL_ERROR and "malformed" in msgs[0].op.result.message
    bad.close()
    good.sendall(search_request(1, "(sn=dupond)"))
    msgs = read_messages(good)
    assert [type(x.op) for x in msgs] == [m.SearchResultEntry, m.SearchResultDone]
    good.close()


def test_anonymous_size_and_paged_caps(tight_server) -> None:  # type: ignore[no-untyped-def]
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=tight_server.port, get_info=ldap3.NONE), auto_bind=True)
    conn.search(SUFFIX, "(mail=*medecin*)", attributes=["mail"])
    assert len(conn.entries) == 8 and conn.result["result"] == 4
    assert "at most 8 entries" in conn.result["message"]
    entries = list(conn.extend.standard.paged_search(SUFFIX, "(mail=*medecin*)", attributes=["mail"], paged_size=5,
                                                     generator=True))
    assert len([e for e in entries if e["type"] == "searchResEntry"]) == 12
    assert conn.result["result"] == 4 and "paged search" in conn.result["message"]
    conn.unbind()


@pytest.mark.skipif(not HAVE_LDAPSEARCH, reason="ldap-utils not installed")
def test_time_limit(slow_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(slow_server.uri, "(mail=*mssante*)", "mail")
    assert r.rc == 3, r.stderr  # timeLimitExceeded
    # Base-scope reads need no index walk and still work.
    r = ldapsearch(slow_server.uri, "(objectClass=*)", "cn", base=f"mail=jean.dupont@medecin.mssante.fr,{SUFFIX}",
                   scope="base")
    assert r.rc == 0 and r.entries[0]["cn"] == ["Jean DUPONT"]


def test_failed_binds_are_rate_limited(slow_server) -> None:  # type: ignore[no-untyped-def]
    server = ldap3.Server("127.0.0.1", port=slow_server.port, get_info=ldap3.NONE)
    codes = []
    for _ in range(3):
        conn = ldap3.Connection(server, "cn=nobody,ou=accounts,o=annuaire-sante,c=fr", "not the password")
        conn.bind()
        codes.append((conn.result["result"], conn.result["message"]))
        conn.unbind()
    assert [c for c, _ in codes] == [49, 49, 53]
    assert "too many failed binds" in codes[2][1]
