"""Benchmark: a harvester against the LDAP extraction protection, and ordinary clients beside it.

    python bench/ldap_harvest.py [--db URL] [--professionals 1950000] [--runs 3] [--duration 60]
                                 [--connections 4] [--workers 2] [--limit NAME=VALUE ...] [--json OUT]
                                 [--code DIR]

Our server runs as deployed (`annuaire ldap`, forked workers, default limits
unless `--limit` says otherwise). Each run uses its own /24 of the loopback
network (Linux routes all of 127/8 to lo; client sockets are bound to
127.0.<run>.x before connecting), so one server serves every run:

- the harvester: 16 addresses (.2 to .17) x `--connections` connections,
  all the time for `--duration` seconds. Every connection first tries the
  broad filters (`(mail=*.mssante.fr)`, `(mail=*mss*)`, `*sante*`, a domain,
  `*mssante*` as a paged search), then takes prefixes from a shared queue
  holding every 3-letter prefix `aaa`..`zzz` (shuffled), in Thunderbird's
  autocomplete filter (sizeLimit 0: the server's cap, 100): a prefix with
  more matches than it got (sizeLimitExceeded, or adminLimitExceeded with
  some entries) is refined (its 26 one-letter extensions join the queue), a
  refused one (adminLimitExceeded, no entry) goes back to the queue and that
  connection pauses a second. It counts the distinct entries (DNs) it
  received;
- an ordinary client on the harvester's /24 (.18): 10 autocomplete prefixes
  looked up once before the harvest, then the same 10 prefixes again and
  again (150 searches in all, spread over the harvest);
- an ordinary client on another /24 (127.0.<100+run>.2): 150 searches of
  its own 10 prefixes during the harvest.

`--long SECONDS` adds one longer run (its own /24) after the others: what
the harvester gets once the first minute's budgets are spent.

Reported per run: the distinct entries harvested (and their share of the
published directory), the harvester's searches and result codes, when it
first met the daily allowance; for each ordinary client, its searches,
refusals (any code but success and sizeLimitExceeded) and entries returned.
Then the medians over the runs, and the cost of charging an answer to the
ledger, in process. `--code DIR` runs the server from another checkout of
the project (e.g. `git archive HEAD annuaire | tar -x -C DIR`) for a
before/after comparison on the same store.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NATIONAL, OUT, machine
from ldap_load import national_store, sample_mailboxes

from annuaire.ldap import messages as m
from annuaire.ldap.ber import frame_length
from annuaire.ldap.filters import parse
from annuaire.store.keys import search_key

SUFFIX = "ou=mailboxes,o=annuaire-sante,c=fr"
THUNDERBIRD = "(|(cn={v}*)(mail={v}*)(sn={v}*))"
BROAD = ["(mail=*.mssante.fr)", "(mail=*mss*)", "(|(mail=*sante*)(cn=*sante*))", "(mail=*@medecin.mssante.fr)"]
OK = (m.SUCCESS, m.SIZE_LIMIT_EXCEEDED)


class Conn(asyncio.Protocol):
    """One LDAP connection: sends a search, collects the DNs until SearchResultDone."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.dns: list[str] = []
        self.transport: asyncio.Transport | None = None
        self.mid = 0

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (size := frame_length(self.buf, 1 << 26)) is not None:
            msg = m.decode_message(bytes(self.buf[:size]))
            del self.buf[:size]
            if isinstance(msg.op, m.SearchResultEntry):
                self.dns.append(msg.op.dn)
            elif self.waiter is not None and not self.waiter.done():
                if isinstance(msg.op, m.SearchResultDone):
                    self.waiter.set_result((msg.op.result.code, self.dns, msg.op.result.message, msg.controls))
                else:  # a Notice of Disconnection
                    self.waiter.set_exception(ConnectionError(getattr(msg.op, "result", None)))

    def connection_lost(self, exc) -> None:  # type: ignore[no-untyped-def]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    async def search(self, filt: str, paged: int = 0) -> tuple[int, list[str], str]:
        self.mid += 1
        self.dns = []
        controls = []
        cookie = b""
        dns: list[str] = []
        while True:
            if paged:
                controls = [m.encode_paged_control(paged, cookie)]
            req = m.SearchRequest(SUFFIX, 2, 0, 0, 0, False, parse(filt), ["mail", "cn"])
            self.waiter = asyncio.get_running_loop().create_future()
            assert self.transport is not None
            self.transport.write(m.encode_message(m.LDAPMessage(self.mid, req, controls)))
            code, got, message, done_controls = await self.waiter
            dns += got
            self.dns = []
            if not paged or code != m.SUCCESS:
                return code, dns, message
            cookie = next((m.decode_paged_control(c.value)[1] for c in done_controls
                           if c.oid == m.OID_PAGED_RESULTS), b"")
            if not cookie:
                return code, dns, message


async def connect(port: int, source: str) -> Conn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(Conn, "127.0.0.1", port, local_addr=(source, 0))
    return proto


def prefixes_of(boxes: list[dict], n: int, rng: random.Random) -> list[str]:
    """`n` autocomplete prefixes a user would type: 4-6 letters of a family name or first name."""
    out: list[str] = []
    for box in rng.sample(boxes, len(boxes)):
        name = search_key(box["last_name"] or box["first_name"] or "").replace(" ", "")
        if len(name) >= 4:
            p = name[:rng.randint(4, min(6, len(name)))]
            if p not in out:
                out.append(p)
        if len(out) == n:
            break
    return out


async def harvest_run(port: int, run: int, duration: float, connections: int, boxes: list[dict],
                      seed: int) -> dict:
    rng = random.Random(seed + run)
    net = f"127.0.{10 + run}"
    other = f"127.0.{100 + run}"
    got: set[str] = set()
    codes: dict[int, int] = {}
    first_refusal: list[float] = []
    refusal_messages: list[str] = []
    searches = 0
    words = ["".join(t) for t in itertools.product(string.ascii_lowercase, repeat=3)]
    rng.shuffle(words)
    queue = collections.deque(words)
    # The ordinary client of the harvester's network looks its prefixes up once, first.
    same = {"prefixes": prefixes_of(boxes, 10, rng), "searches": 0, "refused": 0, "entries": 0, "codes": {}}
    elsewhere = {"prefixes": prefixes_of(boxes, 10, rng), "searches": 0, "refused": 0, "entries": 0, "codes": {}}
    client = await connect(port, f"{net}.18")
    for p in same["prefixes"]:
        code, dns, _ = await client.search(THUNDERBIRD.format(v=p))
        same["searches"] += 1
        same["entries"] += len(dns)
        same["codes"][code] = same["codes"].get(code, 0) + 1
        same["refused"] += code not in OK
    started = time.monotonic()
    stop_at = started + duration

    async def harvester(source: str, k: int) -> None:
        nonlocal searches
        try:
            conn = await connect(port, source)
        except OSError:
            codes[-1] = codes.get(-1, 0) + 1
            return
        todo = [(f, 0) for f in BROAD] + [("(mail=*mssante*)", 500)]
        while time.monotonic() < stop_at:
            word = None
            if todo:
                filt, paged = todo.pop(0)
            else:
                if not queue:
                    return
                word = queue.popleft()
                filt, paged = THUNDERBIRD.format(v=word), 0
            try:
                code, dns, message = await conn.search(filt, paged)
            except ConnectionError:
                codes[-2] = codes.get(-2, 0) + 1
                try:
                    conn = await connect(port, source)
                except OSError:
                    return
                continue
            searches += 1
            codes[code] = codes.get(code, 0) + 1
            got.update(dns)
            if word is not None and code in (m.SIZE_LIMIT_EXCEEDED, m.ADMIN_LIMIT_EXCEEDED) and dns:
                queue.extend(word + c for c in string.ascii_lowercase)  # more matches than received
            elif word is not None and code == m.ADMIN_LIMIT_EXCEEDED:
                queue.append(word)
                await asyncio.sleep(1.0)
            if code == m.ADMIN_LIMIT_EXCEEDED and "daily allowance" in message:
                if not first_refusal:
                    first_refusal.append(time.monotonic() - started)
                    refusal_messages.append(message)
            elif code == m.UNWILLING_TO_PERFORM and message not in refusal_messages:
                refusal_messages.append(message)
        conn.transport.close()  # type: ignore[union-attr]

    async def ordinary(state: dict, source: str, count: int) -> None:
        conn = await connect(port, source)
        interval = duration / count
        for i in range(count):
            await asyncio.sleep(max(0.0, started + i * interval - time.monotonic()))
            p = state["prefixes"][i % len(state["prefixes"])]
            code, dns, _ = await conn.search(THUNDERBIRD.format(v=p))
            state["searches"] += 1
            state["entries"] += len(dns)
            state["codes"][code] = state["codes"].get(code, 0) + 1
            state["refused"] += code not in OK
        conn.transport.close()  # type: ignore[union-attr]

    tasks = [harvester(f"{net}.{2 + a}", a * connections + c) for a in range(16) for c in range(connections)]
    tasks += [ordinary(same, f"{net}.18", 140), ordinary(elsewhere, f"{other}.2", 150)]
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    client.transport.close()  # type: ignore[union-attr]
    return {"network": f"{net}.0/24", "harvested": len(got), "searches": searches,
            "searches_per_second": searches / elapsed, "codes": codes,
            "allowance_reached_after_s": first_refusal[0] if first_refusal else None,
            "messages": refusal_messages, "ordinary_same_network": same, "ordinary_other_network": elsewhere}


def start_server(url: str, workers: int, limits: list[str], work: Path,
                 code: Path | None = None) -> tuple[subprocess.Popen, int]:
    ready = work / "harvest-ready.json"
    ready.unlink(missing_ok=True)
    log = open(work / "harvest-server.log", "wb")
    args = [sys.executable, "-m", "annuaire", "--db", url, "ldap", "--ldap-port", "auto", "--ldap-workers",
            str(workers), "--ready-file", str(ready)]
    for item in limits:
        args += ["--limit", item]
    env = dict(os.environ, PYTHONPATH=str(code)) if code else None
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=code, env=env)
    started = time.monotonic()
    while not ready.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the server failed: {(work / 'harvest-server.log').read_text()[-3000:]}")
        time.sleep(0.2)
    print(f"  server ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return proc, json.loads(ready.read_text())["port"]


def published_count(url: str) -> int:
    from sqlalchemy import func, select

    from annuaire.store import open_store
    from annuaire.store.schema import mailbox
    from annuaire.store.visibility import visible

    store = open_store(url, upgrade=False)
    with store.read() as conn:
        n = conn.execute(select(func.count(func.distinct(func.lower(mailbox.c.address))))
                         .select_from(mailbox).where(visible())).scalar_one()
    store.dispose()
    return int(n)


def ledger_cost(published: int, entries: int = 36, rounds: int = 20000) -> dict:
    """CPU time of charging one answer of `entries` entries (new ones, then the same again)."""
    from annuaire.ldap.limits import LdapLimits, SharedCounters

    counters = SharedCounters(limits=LdapLimits(), published=published)
    allowance = LdapLimits().daily_allowance(published)
    tags = [counters.tag(f"net:10.{i // 256}.{i % 256}.0/24") for i in range(rounds)]
    answers = [[hash(f"user{i}.{j}@x.mssante.fr") for j in range(entries)]
               for i in range(rounds)]
    out = {}
    for label in ("new", "repeated"):
        t = time.process_time()
        for i in range(rounds):
            counters.take(account=False, key_tag=tags[i % 1000], hashes=answers[i], allowance=allowance,
                          burst_key=f"ip:{i % 1000}", per_minute=10**9)
        out[f"{label}_us_per_answer"] = (time.process_time() - t) / rounds * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="Store URL (default: the national dataset under bench/out/)")
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--connections", type=int, default=4, help="per harvester address (16 addresses)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--long", type=float, default=0, help="one more run of this many seconds")
    parser.add_argument("--code", type=Path, help="run the server from this checkout (before/after comparisons)")
    args = parser.parse_args()
    url = args.db or national_store(args.professionals)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):  # the server may run elsewhere
        url = f"sqlite:///{Path(url[len('sqlite:///'):]).resolve()}"
    work = OUT / "ldap-harvest"
    work.mkdir(parents=True, exist_ok=True)
    published = published_count(url)
    boxes = sample_mailboxes(url, 2000, args.seed)
    print(f"{machine()}\nstore {url}: {published:,} published entries", file=sys.stderr)
    report: dict = {"machine": machine(), "store": url, "published": published,
                    "args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    proc, port = start_server(url, args.workers, args.limit, work, args.code.resolve() if args.code else None)
    try:
        plan = [args.duration] * args.runs + ([args.long] if args.long else [])
        for run, duration in enumerate(plan):
            result = asyncio.run(harvest_run(port, run, duration, args.connections, boxes, args.seed))
            result["share"] = result["harvested"] / published
            result["duration"] = duration
            (report["runs"] if run < args.runs else report.setdefault("long", [])).append(result)
            same, other = result["ordinary_same_network"], result["ordinary_other_network"]
            print(f"  run {run + 1}: harvested {result['harvested']:,} distinct entries "
                  f"({100 * result['share']:.2f} % of {published:,}) in {duration:.0f} s, "
                  f"{result['searches']:,} searches, codes {result['codes']}, allowance reached after "
                  f"{result['allowance_reached_after_s']} s; ordinary client same /24: "
                  f"{same['searches']} searches, {same['refused']} refused, {same['entries']} entries; "
                  f"other /24: {other['searches']} searches, {other['refused']} refused, "
                  f"{other['entries']} entries", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    runs = report["runs"]
    report["median"] = {
        "harvested": statistics.median(r["harvested"] for r in runs),
        "share": statistics.median(r["share"] for r in runs),
        "searches_per_second": statistics.median(r["searches_per_second"] for r in runs),
        "ordinary_refused": sum(r["ordinary_same_network"]["refused"] + r["ordinary_other_network"]["refused"]
                                for r in runs),
    }
    if not args.code:
        report["ledger_cost"] = ledger_cost(published)
    print(f"median: {report['median']}; ledger cost {report.get('ledger_cost')}", file=sys.stderr)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
