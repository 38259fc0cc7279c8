"""Fuzzing: random and mutated packets never crash, hang or raise anything but BerError.

`LDAP_FUZZ_COUNT` sets the number of packets of the codec fuzz (default
100,000, about 20 s); the longer run of the benchmarks file uses 5,000,000.
Then a real server receives mutated packets on many connections and must
still answer correctly afterwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

from annuaire.ldap import ber
from annuaire.ldap import messages as m
from annuaire.ldap.directory import Directory
from annuaire.ldap.filters import parse
from annuaire.ldap.index import DirectoryIndex

COUNT = int(os.environ.get("LDAP_FUZZ_COUNT", "100000"))
MAX_PDU = 256 * 1024

SEEDS_FILTERS = [
    "(|(cn=jean*dup*)(mail=jean*dup*)(sn=jean*dup*))",
    "(|(mail=*dup*)(cn=*dup*)(givenName=*dup*)(sn=*dup*))",
    "(&(mail=*)(|(mail=dup*)(cn=dup*)(sn=dup*)(givenName=dup*)))",
    "(|(givenName=dup*)(sn=dup*)(cn=dup*)(mail=dup*))",
    "(mail=camille.martin@medecin.mssante.fr)",
    "(&(mssDepartement=75)(!(sn~=martin))(cn:caseIgnoreMatch:=x)(sn>=a)(sn<=z))",
    "(cn:dn:1.2.3:=x)",
]


def corpus() -> list[bytes]:
    out = []
    for i, f in enumerate(SEEDS_FILTERS):
        req = m.SearchRequest("ou=mailboxes,o=annuaire-sante,c=fr", 2, 0, 50, 10, False, parse(f),
                              ["cn", "mail", "*", "+"])
        out.append(m.encode_message(m.LDAPMessage(i + 1, req, [m.encode_paged_control(10, b"")])))
    out.append(m.encode_message(m.LDAPMessage(9, m.BindRequest(3, "cn=x,ou=accounts,o=annuaire-sante,c=fr",
                                                                  b"secret"))))
    out.append(m.encode_message(m.LDAPMessage(10, m.BindRequest(3, "", None, "PLAIN", b"x"))))
    out.append(m.encode_message(m.LDAPMessage(11, m.ExtendedRequest(m.OID_START_TLS))))
    out.append(m.encode_message(m.LDAPMessage(12, m.AbandonRequest(3))))
    out.append(m.encode_message(m.LDAPMessage(13, m.UnbindRequest())))
    out.append(m.encode_message(m.LDAPMessage(14, m.SearchResultDone(m.LDAPResult(0, "", "")))))
    out.append(bytes.fromhex("300c020115 4a07 6d61696c3d78".replace(" ", "")))  # delete request
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if not b:
            b += rng.randbytes(rng.randint(1, 8))
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 2:
            del b[i:i + rng.randint(1, 8)]
        elif op == 3:
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 16)]
        elif op == 5:
            b[i] = rng.choice([0x80, 0x81, 0x84, 0x85, 0xFF, 0x00, 0x7F, 0x30, 0xA0, 0xA1, 0xA2])
        else:
            del b[i:]
    return bytes(b)


def random_packet(rng: random.Random) -> bytes:
    body = rng.randbytes(rng.randint(0, 64))
    kind = rng.randrange(3)
    if kind == 0:
        return body
    if kind == 1:
        return b"\x30" + ber.encode_length(len(body)) + body
    inner = bytes((rng.choice([0x60, 0x63, 0x42, 0x50, 0x77, 0x66]),)) + ber.encode_length(len(body)) + body
    msg = ber.encode_int(rng.randrange(1 << 31)) + inner
    return b"\x30" + ber.encode_length(len(msg)) + msg


def small_directory() -> Directory:
    records = [{"address": f"p{i}.dup{i % 7}@medecin.mssante.fr", "type": "PER", "first_name": f"Jean{i % 5}",
                "last_name": f"Dupont{i % 11}", "holder": f"8{i:011d}", "dept_code": "75"} for i in range(300)]
    return Directory(DirectoryIndex.build(records, "ou=mailboxes,o=annuaire-sante,c=fr"))


def test_codec_fuzz() -> None:
    rng = random.Random(20261125)
    seeds = corpus()
    directory = small_directory()
    decoded = errors = 0
    started = time.monotonic()
    slowest = 0.0
    for n in range(COUNT):
        if n % 3 == 0:
            pkt = random_packet(rng)
        else:
            pkt = mutate(rng, rng.choice(seeds))
        t0 = time.perf_counter()
        try:
            size = ber.frame_length(pkt, MAX_PDU)
            if size is None:
                continue
            msg = m.decode_message(pkt[:size])
            decoded += 1
        except ber.BerError:
            errors += 1
            continue
        finally:
            slowest = max(slowest, time.perf_counter() - t0)
        if isinstance(msg.op, m.SearchRequest):
            found = directory.collect(msg.op, 50, time.monotonic() + 1)
            assert found.error is not None or isinstance(found.refs, list)
    assert errors > COUNT // 4 and decoded > COUNT // 20, (errors, decoded)
    assert slowest < 0.5, f"one packet took {slowest:.3f} s to decode"
    assert time.monotonic() - started < 600


def test_server_survives_hostile_packets(sqlite_world, caplog) -> None:  # type: ignore[no-untyped-def]
    """Mutated packets over many connections; then the server still answers everyone correctly."""
    from annuaire.ldap.limits import LdapLimits
    from annuaire.ldap.service import LdapConfig, start_in_process

    url, world = sqlite_world
    rng = random.Random(7)
    seeds = corpus()

    async def scenario() -> None:
        config = LdapConfig(store_url=url, port=0, workers=1,
                            limits=LdapLimits(max_connections_per_address=1000, entries_per_minute=10**9))
        service = await start_in_process(config)
        try:
            async def client(k: int) -> None:
                reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
                for _ in range(40):
                    pkt = mutate(rng, rng.choice(seeds)) if k % 2 else random_packet(rng)
                    writer.write(pkt)
                    if rng.random() < 0.1:
                        writer.write(rng.choice(seeds))
                try:
                    await writer.drain()
                    await asyncio.wait_for(reader.read(1 << 20), 2)
                except (TimeoutError, ConnectionError):
                    pass
                writer.close()

            await asyncio.gather(*(client(k) for k in range(100)))
            # A well-behaved client still gets a correct answer.
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            req = m.SearchRequest("ou=mailboxes,o=annuaire-sante,c=fr", 2, 0, 0, 0, False,
                                  parse("(mail=jean.dupont@medecin.mssante.fr)"), ["cn"])
            writer.write(m.encode_message(m.LDAPMessage(5, req)))
            await writer.drain()
            buf = b""
            msgs = []
            while not msgs or not isinstance(msgs[-1].op, m.SearchResultDone):
                buf += await asyncio.wait_for(reader.read(65536), 5)
                while (size := ber.frame_length(buf, MAX_PDU)) is not None:
                    msgs.append(m.decode_message(buf[:size]))
                    buf = buf[size:]
            assert isinstance(msgs[0].op, m.SearchResultEntry)
            assert msgs[0].op.attributes == [("cn", [b"Jean DUPONT"])]
            assert msgs[-1].op.result.code == 0
            writer.close()
            # Connections were all released.
            await asyncio.sleep(0.2)
            assert service.state.counters.connections("127.0.0.1") == 0
        finally:
            await service.close()

    asyncio.run(scenario())
    failures = [r for r in caplog.records if r.name == "annuaire.ldap" and r.levelname == "ERROR"]
    assert not failures, failures[0].getMessage()


def test_pipelined_requests_from_a_slow_reader(sqlite_world) -> None:  # type: ignore[no-untyped-def]
    """A client that sends 400 searches without reading: the server stops reading it (bounded
    buffers), keeps serving others, and every answer arrives in order once the client reads."""
    from annuaire.ldap.limits import LdapLimits
    from annuaire.ldap.service import LdapConfig, start_in_process

    url, _ = sqlite_world

    async def scenario() -> None:
        service = await start_in_process(LdapConfig(store_url=url, port=0, workers=1,
                                                    limits=LdapLimits(entries_per_minute=10**9)))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            for mid in range(1, 401):
                req = m.SearchRequest("ou=mailboxes,o=annuaire-sante,c=fr", 2, 0, 0, 0, False,
                                      parse("(mail=*mssante*)"), [])
                writer.write(m.encode_message(m.LDAPMessage(mid, req)))
            await writer.drain()
            await asyncio.sleep(0.5)
            conn = next(iter(service.state.connections))
            assert len(conn.buf) <= 256 * 1024 + 65536  # unread requests stay in the kernel, not in memory
            # Another client is served meanwhile.
            r2, w2 = await asyncio.open_connection("127.0.0.1", service.port)
            w2.write(m.encode_message(m.LDAPMessage(1, m.SearchRequest(
                "ou=mailboxes,o=annuaire-sante,c=fr", 2, 0, 0, 0, False, parse("(sn=dupond)"), ["mail"]))))
            await w2.drain()
            first = await asyncio.wait_for(r2.read(65536), 5)
            assert b"jeanne.dupond@medecin.mssante.fr" in first
            w2.close()
            done = []
            buf = b""
            while len(done) < 400:
                buf += await asyncio.wait_for(reader.read(1 << 20), 10)
                while (size := ber.frame_length(buf, 1 << 24)) is not None:
                    msg = m.decode_message(buf[:size])
                    buf = buf[size:]
                    if isinstance(msg.op, m.SearchResultDone):
                        done.append(msg.message_id)
            assert done == list(range(1, 401))
            writer.close()
        finally:
            await service.close()

    asyncio.run(scenario())
