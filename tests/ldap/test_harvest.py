"""Extraction protection: distinct entries per network and per account over a sliding day,
repeated lookups free, unselective filters refused, slow senders closed.

The server runs for real (2 forked workers sharing the counters) over a small
world, with a small configured allowance (30 distinct entries a day per
network, 40 new entries a minute per address). Clients bind their sockets to
loopback addresses (Linux routes all of 127/8 to lo) so that several
addresses of one /24, and several /24s, can be used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from ldap_data import populate
from ldap_support import (
    SUFFIX,
    LdapServer,
    drop_store,
    make_store,
    start_server,
    stop_server,
)

from annuaire.errors import InvalidInput
from annuaire.ldap import ber
from annuaire.ldap import messages as m
from annuaire.ldap.filters import parse
from annuaire.ldap.limits import HOUR, LdapLimits, SharedCounters

ALLOWANCE = 30
PER_MINUTE = 40
THUNDERBIRD = "(|(cn={v}*)(mail={v}*)(sn={v}*))"
PREFIXES = ["cam", "hel", "eri", "zoe", "fra", "noe", "jea", "mar", "pie", "lea", "chl", "lou", "gae", "ana",
            "jer", "ben", "ine", "the", "mat", "dup", "car", "urg", "rad", "acc", "blo", "ped", "lab", "sec"]


# --- a raw client bound to a source address ------------------------------------------------------


class Client:
    def __init__(self, port: int, source: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        self.mid = 0
        self.buf = b""

    def _send(self, op) -> int:  # type: ignore[no-untyped-def]
        self.mid += 1
        self.sock.sendall(m.encode_message(m.LDAPMessage(self.mid, op)))
        return self.mid

    def _read(self) -> m.LDAPMessage:
        while (size := ber.frame_length(self.buf, 1 << 24)) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        msg = m.decode_message(self.buf[:size])
        self.buf = self.buf[size:]
        return msg

    def bind(self, name: str, password: str) -> int:
        self._send(m.BindRequest(3, name, password.encode()))
        return self._read().op.result.code

    def search(self, filt: str, size: int = 0) -> tuple[list[str], int, str]:
        self._send(m.SearchRequest(SUFFIX, 2, 0, size, 0, False, parse(filt), ["mail"]))
        mails = []
        while True:
            msg = self._read()
            if isinstance(msg.op, m.SearchResultEntry):
                mails.append(msg.op.dn.split(",", 1)[0].split("=", 1)[1])
            else:
                return mails, msg.op.result.code, msg.op.result.message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def world_url(tmp_path_factory) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    from annuaire.store import open_store

    tmp = tmp_path_factory.mktemp("harvest-world")
    url = f"sqlite:///{tmp / 'world.sqlite'}"
    store = open_store(url)
    world = populate(store, seed=7)
    store.dispose()
    return url, world


@pytest.fixture(scope="module")
def harvest_server(world_url, tmp_path_factory) -> Iterator[LdapServer]:  # type: ignore[no-untyped-def]
    url, world = world_url
    server = start_server(url, tmp_path_factory.mktemp("harvest"), world, tls=False, workers=2, limits={
        "daily_share": 0, "daily_floor": ALLOWANCE, "account_daily_share": 0, "entries_per_minute": PER_MINUTE,
        "unselective_floor": 0, "request_timeout": 1.5})
    yield server
    stop_server(server)


def harvest(port: int, sources: list[str], rounds: int = 2) -> tuple[set[str], list[tuple[int, str]]]:
    """Many connections from `sources`, each asking for other prefixes; (distinct mails, refusals)."""
    got: set[str] = set()
    refusals: list[tuple[int, str]] = []
    lock = threading.Lock()

    def run(k: int, source: str) -> None:
        for r in range(rounds):
            client = Client(port, source)  # a new connection: either worker
            try:
                for j in range(4):
                    prefix = PREFIXES[(k * 4 + j + r * 7) % len(PREFIXES)]
                    mails, code, message = client.search(THUNDERBIRD.format(v=prefix))
                    with lock:
                        got.update(mails)
                        if code == m.ADMIN_LIMIT_EXCEEDED:
                            refusals.append((code, message))
            finally:
                client.close()

    threads = [threading.Thread(target=run, args=(k, s)) for k, s in enumerate(sources)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got, refusals


# --- through the real server -----------------------------------------------------------------------


def test_distinct_entries_per_network_across_addresses_and_workers(harvest_server) -> None:  # type: ignore[no-untyped-def]
    port = harvest_server.port
    sources = [f"127.0.10.{i}" for i in range(2, 10)]  # 8 addresses of one /24, 16 connections
    got, refusals = harvest(port, sources)
    assert len(got) == ALLOWANCE  # every new entry counted once, whichever address and worker
    assert refusals
    message = refusals[-1][1]
    assert "quota journalier atteint" in message and "daily allowance reached" in message
    assert "127.0.10.0/24" in message and f"at most {ALLOWANCE} a day" in message
    assert "fichiers d'extraction quotidiens" in message and "daily extraction files" in message
    # Entries already returned to the network are still served, from any of its addresses.
    known = sorted(got)[:3]
    client = Client(port, "127.0.10.77")
    for mail in known:
        assert client.search(f"(mail={mail})") == ([mail], m.SUCCESS, "")
    # A new one is not.
    other = next(a for a in sorted(harvest_server.world.published) if a not in got)
    mails, code, message = client.search(f"(mail={other})")
    assert mails == [] and code == m.ADMIN_LIMIT_EXCEEDED and "entries already received remain available" in message
    client.close()
    # Another network has its own allowance.
    got_elsewhere, _ = harvest(port, ["127.0.11.2", "127.0.11.3"], rounds=1)
    assert 0 < len(got_elsewhere) <= ALLOWANCE


def test_repeated_lookups_are_never_refused(harvest_server) -> None:  # type: ignore[no-untyped-def]
    """150 searches of 10 autocomplete prefixes: far more entries than the minute's budget (40) and
    the day's allowance (30), but the same ones."""
    published = sorted(harvest_server.world.published)
    candidates = {f"{local.split('.')[0]}.{local.split('.')[1][:k]}" for local in (a.split("@")[0] for a in published)
                  if local.count(".") >= 1 and local.split(".")[1].isalpha() for k in (1, 2, 3)}
    matching = {c: {a for a in published if a.startswith(c)} for c in sorted(candidates)}
    prefixes: list[str] = []
    union: set[str] = set()
    for prefix in sorted(matching, key=lambda c: (-len(matching[c]), c)):
        if len(matching[prefix]) <= 3 and len(union | matching[prefix]) <= ALLOWANCE - 2 and \
                not union & matching[prefix]:
            prefixes.append(prefix)
            union |= matching[prefix]
        if len(prefixes) == 10:
            break
    assert len(prefixes) == 10 and len(union) > 15
    client = Client(harvest_server.port, "127.0.20.2")
    first_answers = {}
    returned = 0
    for round_ in range(15):
        for prefix in prefixes:
            mails, code, message = client.search(f"(|(mail={prefix}*)(givenName={prefix}*))")
            assert code == m.SUCCESS, (round_, prefix, code, message)
            first_answers.setdefault(prefix, sorted(mails))
            assert sorted(mails) == first_answers[prefix]
            returned += len(mails)
    client.close()
    assert returned > 4 * ALLOWANCE and returned > 4 * PER_MINUTE


REFUSED_BROAD = ["(mail=*.mssante.fr)", "(mail=*mss*)", "(mail=*sante*)", "(mail=*@medecin.mssante.fr)",
                 "(mail=*r@me*)", "(mail=*t@medecin*)", "(|(mail=*mss*)(cn=*mss*)(givenName=*mss*)(sn=*mss*))",
                 "(&(mail=*)(mail=*mssante*))", "(|(cn=dup*)(mail=*.mssante.fr))"]
ACCEPTED = ["(|(cn=dup*)(mail=dup*))", "(|(cn=jean*)(sn=dup*)(mail=jean*))", "(mail=jean.dupont@medecin.mssante.fr)",
            "(&(mail=*)(|(mail=dup*)(cn=dup*)(sn=dup*)(givenName=dup*)))",
            "(|(mail=*dup*)(cn=*dup*)(givenName=*dup*)(sn=*dup*))", "(&(mail=*@medecin.mssante.fr)(sn=dupont))",
            "(mail=jean.dupont@*)", "(mail=*dupont@medecin.mssante.fr)"]


def test_unselective_filters_are_refused_in_french_and_english(harvest_server) -> None:  # type: ignore[no-untyped-def]
    client = Client(harvest_server.port, "127.0.30.2")
    for filt in REFUSED_BROAD:
        mails, code, message = client.search(filt)
        assert (mails, code) == ([], m.UNWILLING_TO_PERFORM), filt
        assert "filtre trop large" in message and "filter too broad" in message, (filt, message)
        assert "fichiers d'extraction quotidiens" in message and "daily extraction files" in message
    assert "ne porte que sur un domaine" in client.search("(mail=*@medecin.mssante.fr)")[2]
    assert "only names a domain" in client.search("(mail=*.mssante.fr)")[2]
    assert "% of the entries" in client.search("(mail=*mss*)")[2]
    for filt in ACCEPTED:
        mails, code, message = client.search(filt)
        assert code == m.SUCCESS and (mails or filt == ACCEPTED[0]), (filt, code, message)
    client.close()


def test_an_account_has_its_own_allowance(harvest_server, world_url) -> None:  # type: ignore[no-untyped-def]
    url, _ = world_url
    name, password = "harvest-proxy", "a long enough password"
    own = 2 * ALLOWANCE + 10
    cli = [sys.executable, "-m", "annuaire", "--db", url, "ldap-account"]
    done = subprocess.run([*cli, "add", name, "--daily-allowance", str(own), "--password-stdin"],
                          input=password + "\n", capture_output=True, text=True, env=os.environ)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([*cli, "list"], capture_output=True, text=True, env=os.environ)
    assert f"daily_allowance={own}" in listed.stdout
    # The network's anonymous allowance is used up first.
    got, refusals = harvest(harvest_server.port, ["127.0.40.2", "127.0.40.3"])
    assert len(got) == ALLOWANCE and refusals
    # Bound to the account (accounts are reloaded within a refresh), the same addresses get more.
    deadline = time.monotonic() + 15
    while True:
        client = Client(harvest_server.port, "127.0.40.2")
        if client.bind(f"cn={name},ou=accounts,o=annuaire-sante,c=fr", password) == m.SUCCESS:
            break
        client.close()
        assert time.monotonic() < deadline, "the account never became usable"
        time.sleep(0.3)
    received: set[str] = set()
    message = ""
    for prefix in PREFIXES:
        mails, code, text = client.search(THUNDERBIRD.format(v=prefix))
        received.update(mails)
        if code == m.ADMIN_LIMIT_EXCEEDED:
            message = text
            break
    client.close()
    assert len(received) == own
    assert f"account {name}" in message and f"le compte {name}" in message and f"at most {own} a day" in message


def test_a_slow_sender_is_closed_while_others_are_served(harvest_server) -> None:  # type: ignore[no-untyped-def]
    port = harvest_server.port
    request = m.encode_message(m.LDAPMessage(1, m.SearchRequest(SUFFIX, 2, 0, 0, 0, False, parse("(sn=dupond)"),
                                                                ["mail"])))
    stalled = socket.create_connection(("127.0.0.1", port), source_address=("127.0.50.2", 0))
    stalled.sendall(request[:5])  # a partial PDU, never completed
    trickle = socket.create_connection(("127.0.0.1", port), source_address=("127.0.50.3", 0))
    started = time.monotonic()
    served = 0
    closed: dict[str, float] = {}
    sent = 0
    normal = Client(port, "127.0.50.4")
    stalled.setblocking(False)
    trickle.setblocking(False)
    while len(closed) < 2 and time.monotonic() - started < 8:
        if "trickle" not in closed and sent < len(request) - 1:
            try:
                trickle.send(request[sent:sent + 1])  # one byte every 0.1 s: active, never complete
                sent += 1
            except OSError:
                pass
        mails, code, _ = normal.search("(sn=dupond)")
        assert (len(mails), code) == (1, m.SUCCESS)
        served += 1
        for name, sock in (("stalled", stalled), ("trickle", trickle)):
            if name in closed:
                continue
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                notice = m.decode_message(data[:ber.frame_length(data, 1 << 20)])
                assert notice.op.name == m.OID_NOTICE_OF_DISCONNECTION
                assert notice.op.result.code == m.PROTOCOL_ERROR and "incomplete" in notice.op.result.message
            closed[name] = time.monotonic() - started
        time.sleep(0.1)
    normal.close()
    stalled.close()
    trickle.close()
    assert set(closed) == {"stalled", "trickle"}, closed
    assert all(1.0 <= t < 4.5 for t in closed.values()), closed
    assert served >= 10


# --- the ledger itself -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000 * HOUR

    def __call__(self) -> float:
        return self.now


def _hashes(counters: SharedCounters, names: list[str]) -> list[int]:
    return [hash(n) for n in names]


def test_sliding_day() -> None:
    clock = Clock()
    counters = SharedCounters(slots=64, limits=LdapLimits(ledger_slots=8, ledger_entries=256), clock=clock)
    net = counters.tag("net:192.0.2.0/24")
    a = _hashes(counters, [f"a{i}@x.fr" for i in range(10)])
    b = _hashes(counters, [f"b{i}@x.fr" for i in range(10)])

    def take(hashes: list[int]):  # type: ignore[no-untyped-def]
        return counters.take(account=False, key_tag=net, hashes=hashes, allowance=15, burst_key="ip:x",
                             per_minute=10**6)

    assert (take(a).new, take(a).new) == (10, 0)
    clock.now += 5 * HOUR
    t = take(b)
    assert (t.cut, t.new, t.used, t.reason) == (5, 5, 15, "day")
    assert 18 * HOUR < t.wait <= 19 * HOUR  # when the first ten leave the window
    assert take(a).reason is None  # still remembered: free
    clock.now += 19 * HOUR  # 24 h after the first ten
    t = take(b[5:])
    assert (t.new, t.reason) == (5, None)  # their hour left the window
    t = take(a)  # a's ten are new again (forgotten after 24 h), and the day holds b's ten
    assert (t.cut, t.new, t.used, t.reason) == (5, 5, 15, "day")


def test_burst_counts_new_entries_only() -> None:
    clock = Clock()
    counters = SharedCounters(slots=64, limits=LdapLimits(ledger_slots=8, ledger_entries=256), clock=clock)
    net = counters.tag("net:192.0.2.0/24")
    a = _hashes(counters, [f"a{i}@x.fr" for i in range(30)])
    take = lambda h: counters.take(account=False, key_tag=net, hashes=h, allowance=10**6,
                                   burst_key="ip:192.0.2.7", per_minute=20)
    t = take(a)
    assert (t.cut, t.reason) == (20, "minute") and 2.5 <= t.wait <= 3.5
    for _ in range(100):
        assert take(a[:20]).reason is None
    clock.now += 30
    assert take(a).cut == 30  # 10 more after half a minute


def test_forgotten_entries_are_charged_again_never_free() -> None:
    clock = Clock()
    counters = SharedCounters(slots=64, limits=LdapLimits(ledger_slots=8, ledger_entries=16), clock=clock)
    net = counters.tag("net:192.0.2.0/24")
    many = _hashes(counters, [f"m{i}@x.fr" for i in range(200)])
    take = lambda h: counters.take(account=False, key_tag=net, hashes=h, allowance=10**6,
                                   burst_key="ip:x", per_minute=10**6)
    assert take(many).new == 200
    again = take(many)
    assert again.new >= 200 - 16 and again.used == 200 + again.new


def test_networks_sharing_a_slot_share_their_allowance() -> None:
    clock = Clock()
    counters = SharedCounters(slots=64, limits=LdapLimits(ledger_slots=1, ledger_entries=256), clock=clock)
    a = _hashes(counters, [f"a{i}@x.fr" for i in range(10)])
    b = _hashes(counters, [f"b{i}@x.fr" for i in range(10)])
    one, two = counters.tag("net:192.0.2.0/24"), counters.tag("net:198.51.100.0/24")
    t = counters.take(account=False, key_tag=one, hashes=a, allowance=15, burst_key="a", per_minute=10**6)
    assert t.new == 10
    t = counters.take(account=False, key_tag=two, hashes=b, allowance=15, burst_key="b", per_minute=10**6)
    assert (t.new, t.reason) == (5, "day")  # stricter, never looser
    clock.now += 25 * HOUR  # the slot's owner left: the next network claims it afresh
    t = counters.take(account=False, key_tag=two, hashes=b, allowance=15, burst_key="b", per_minute=10**6)
    assert (t.new, t.reason) == (10, None)


def test_workers_share_the_ledger() -> None:
    """Counters created before a fork are the same memory in the child."""
    import multiprocessing

    counters = SharedCounters(slots=64, limits=LdapLimits(ledger_slots=8, ledger_entries=256))
    net = counters.tag("net:192.0.2.0/24")
    names = [f"w{i}@x.fr" for i in range(12)]

    def child() -> None:
        counters.take(account=False, key_tag=net, hashes=[hash(n) for n in names], allowance=100,
                      burst_key="x", per_minute=10**6)

    p = multiprocessing.get_context("fork").Process(target=child)
    p.start()
    p.join()
    assert counters.used(account=False, key_tag=net) == 12
    t = counters.take(account=False, key_tag=net, hashes=[hash(n) for n in names], allowance=100,
                      burst_key="x", per_minute=10**6)
    assert t.new == 0  # the child's entries are free here


def test_networks() -> None:
    limits = LdapLimits()
    assert limits.network("127.0.0.17") == "127.0.0.0/24"
    assert limits.network("::ffff:192.0.2.9") == "192.0.2.0/24"
    assert limits.network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert LdapLimits(network_v4_prefix=16).network("10.1.2.3") == "10.1.0.0/16"
    assert limits.network("unix") == "unix"
    assert limits.daily_allowance(536_002) == 10_720
    assert limits.daily_allowance(200) == limits.daily_floor


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_account_allowances_are_stored(engine: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Migration 0012 adds ldap_account.daily_allowance (and removes it on the way down)."""
    from alembic import command
    from sqlalchemy import inspect

    from annuaire.ldap.accounts import add_account, load_accounts
    from annuaire.store import open_store
    from annuaire.store.engine import _alembic_config

    url, dbname = make_store(engine, tmp_path)
    try:
        store = open_store(url)
        add_account(store, "ch-x-proxy", "a long enough password", daily_allowance=5000)
        add_account(store, "plain", "a long enough password", size_limit=20)
        accounts = load_accounts(store)
        assert accounts["ch-x-proxy"].daily_allowance == 5000 and accounts["plain"].daily_allowance is None
        with pytest.raises(InvalidInput, match="--daily-allowance"):
            add_account(store, "bad", "a long enough password", daily_allowance=0)
        config = _alembic_config()
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0011")
        assert "daily_allowance" not in {c["name"] for c in inspect(store.engine).get_columns("ldap_account")}
        store.dispose()
        store = open_store(url)  # upgraded again
        accounts = load_accounts(store)
        assert accounts["ch-x-proxy"].daily_allowance is None and accounts["plain"].size_limit == 20
        store.dispose()
    finally:
        drop_store(dbname)


def test_a_lock_held_by_a_dead_worker_is_recovered() -> None:
    import multiprocessing
    import signal

    counters = SharedCounters(slots=64, limits=LdapLimits(ledger_slots=8, ledger_entries=256))
    assert counters.recover_lock(wait=0.1) is False  # free: left alone

    def child() -> None:
        counters._lock.acquire()
        os.kill(os.getpid(), signal.SIGKILL)

    p = multiprocessing.get_context("fork").Process(target=child)
    p.start()
    p.join()
    assert counters.recover_lock(wait=0.1) is True
    assert counters.connect("192.0.2.1", 5)  # usable again
