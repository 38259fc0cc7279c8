"""Freshness benchmark: from a publication's commit to its visibility in LDAP, FHIR and the web page.

    .venv/bin/python bench/freshness.py [--db URL] [--publications 60] [--ldap-rate 900] [--fhir-rate 150]

1. the national store of bench/fhir_load.py (≈1.95 M professionals, imported and rendered once,
   cached under bench/out/);
2. `annuaire serve` with 2 HTTP and 2 LDAP workers;
3. background load for the whole measurement, open loop: LDAP searches drawn from the data
   (bench/ldap_load.py's mix) at `--ldap-rate` and FHIR searches (bench/fhir_load.py's mix) at
   `--fhir-rate` — by default a quarter of each interface's measured maximum on 2 cores (3,676
   and ~600 searches/s), so half of the machine in all;
4. an operator publishes its domain `--publications` times, each list with one more ORG box;
   the commit time is the publication's `finished_at` (stored just before its commit); three
   threads poll LDAP (`(mail=…)`, one connection), FHIR (`Organization?mailbox-mss:exact=…`) and
   the web page (`/?q=…`) every 10 ms until the box appears; lag = first seen - commit.
5. p50/p90/p99/max per view; the result is appended to docs/benchmarks.md, section "Freshness".
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import free_port, machine  # noqa: E402 (after the sys.path setup)

DOMAIN = "fraicheur.mssante.fr"


def setup(url: str) -> tuple[str, str, list[str]]:
    """(operator token, FHIR key, technical ids of open structures) — created on each run."""
    from sqlalchemy import delete, select

    from annuaire.fhir import auth
    from annuaire.mailboxes.operators import add_operator
    from annuaire.store import open_store
    from annuaire.store.schema import api_key, domain, mailbox, operator, structure

    store = open_store(url)
    with store.write() as conn:  # a previous run's operator, key and boxes
        conn.execute(delete(mailbox).where(mailbox.c.domain == DOMAIN))
        conn.execute(delete(domain).where(domain.c.name == DOMAIN))
        conn.execute(delete(operator).where(operator.c.name == "bench-freshness"))
        conn.execute(delete(api_key).where(api_key.c.name == "bench-freshness"))
    _, token = add_operator(store, "bench-freshness", [DOMAIN])
    key = auth.add_key(store, "bench-freshness", rate_limit=1_000_000)
    with store.read() as conn:
        techs = list(conn.execute(select(structure.c.tech_id).where(structure.c.active, structure.c.idnat.is_not(None))
                                  .limit(5000)).scalars())
    store.dispose()
    return token, key, techs


def start(url: str, http_port: int, ldap_port: int) -> subprocess.Popen:
    # The load comes from one address: the anti-extraction limits are lifted, as in bench/ldap_load.py.
    env = dict(os.environ, ANNUAIRE_EXTRACTIONS_TIME="off",
               ANNUAIRE_LDAP_LIMITS="entries_per_minute=1000000000,max_connections_per_address=100000,"
                                    "daily_floor=1000000000,unselective_share=1.0")
    return subprocess.Popen(
        [sys.executable, "-m", "annuaire", "--db", url, "serve", "--http-port", str(http_port), "--http-workers", "2",
         "--ldap-port", str(ldap_port)], env=env, stdout=subprocess.DEVNULL)


def wait_ready(http: httpx.Client, key: str, ldap_port: int, timeout: float = 900) -> None:
    import ldap3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = http.get("/fhir/v2/Practitioner", params={"_count": "1"}, headers={"ESANTE-API-KEY": key})
            conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=ldap_port, get_info=ldap3.NONE), auto_bind=True)
            conn.unbind()
            if r.status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(1)
    raise SystemExit("the server did not become ready")


# --- background load ------------------------------------------------------------------------


def _ldap_load(port: int, url: str, rate: float, seconds: float, out: multiprocessing.Queue) -> None:
    from ldap_load import request_mix, run_load, sample_mailboxes

    requests = request_mix(sample_mailboxes(url, 3000, 7), 20_000, 7, 100)
    out.put(("ldap", run_load(port, requests, 1, 16, seconds, rate)))


async def _fhir_open_loop(port: int, key: str, work: list[tuple[str, str]], rate: float, seconds: float,
                          connections: int = 8) -> dict:
    done: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def one(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        interval = connections / rate
        next_send = time.perf_counter() + random.random() * interval
        i = k * 7919
        while next_send < stop:
            now = time.perf_counter()
            if next_send > now:
                await asyncio.sleep(next_send - now)
            _, path = work[i % len(work)]
            i += 1
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nESANTE-API-KEY: {key}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(x.split(b":")[1]) for x in head.split(b"\r\n")
                           if x.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            if head[9:12] != b"200":
                errors += 1
            done.append(time.perf_counter() - next_send)
            next_send += interval
        writer.close()

    await asyncio.gather(*(one(k) for k in range(connections)))
    done.sort()
    return {"searches": len(done), "per_second": len(done) / seconds, "errors": errors,
            "p99_ms": done[int(len(done) * 0.99) - 1] * 1000 if done else 0.0}


def _fhir_load(port: int, key: str, url: str, rate: float, seconds: float, out: multiprocessing.Queue) -> None:
    from fhir_load import queries

    out.put(("fhir", asyncio.run(_fhir_open_loop(port, key, queries(url), rate, seconds))))


# --- publications and their visibility ----------------------------------------------------------


def _stored(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _first_seen(check, stop: threading.Event, out: dict, name: str) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        try:
            if check():
                out[name] = time.time()
                return
        except Exception:  # noqa: BLE001 - keep polling
            pass
        time.sleep(0.01)


def measure(http_port: int, ldap_port: int, token: str, key: str, techs: list[str], n: int) -> dict[str, list[float]]:
    import ldap3

    rng = random.Random(3)
    lags: dict[str, list[float]] = {"LDAP": [], "FHIR": [], "web": [], "publication answer": []}
    boxes: list[dict] = []
    ldap = ldap3.Connection(ldap3.Server("127.0.0.1", port=ldap_port, get_info=ldap3.NONE), auto_bind=True)
    base = f"http://127.0.0.1:{http_port}"
    with httpx.Client(base_url=base, timeout=60) as api, httpx.Client(base_url=base, timeout=60) as fhir, \
            httpx.Client(base_url=base, timeout=60) as web:
        for i in range(n):
            address = f"service.fraicheur{i}@{DOMAIN}"
            boxes.append({"type": "ORG", "address": address, "structure": rng.choice(techs),
                          "service": f"Service de mesure {i}"})
            checks = {
                "LDAP": lambda a=address: ldap.search("ou=mailboxes,o=annuaire-sante,c=fr", f"(mail={a})",
                                                      attributes=["mail"]) and bool(ldap.entries),
                "FHIR": lambda a=address: fhir.get(f"/fhir/v2/Organization?mailbox-mss:exact={quote(a)}",
                                                   headers={"ESANTE-API-KEY": key}).json().get("total", 0) > 0,
                "web": lambda a=address: f'href="mailto:{a}"' in web.get("/", params={"q": a}).text,
            }
            seen: dict[str, float] = {}
            stop = threading.Event()
            threads = [threading.Thread(target=_first_seen, args=(c, stop, seen, name)) for name, c in checks.items()]
            for t in threads:
                t.start()
            r = api.put(f"/api/v1/domains/{DOMAIN}/mailboxes", json={"mailboxes": boxes},
                        headers={"Authorization": f"Bearer {token}"})
            answered = time.time()
            assert r.status_code == 200 and r.json()["created"] == 1, r.text
            run = api.get(f"/api/v1/publications/{r.json()['publication']}",
                          headers={"Authorization": f"Bearer {token}"}).json()
            committed = _stored(run["finished_at"])
            for t in threads:
                t.join(timeout=30)
            stop.set()
            lags["publication answer"].append(answered - committed)
            for name in checks:
                if name in seen:
                    lags[name].append(max(0.0, seen[name] - committed))
                else:
                    lags[name].append(float("inf"))
            time.sleep(rng.uniform(0.2, 0.8))
    ldap.unbind()
    return lags


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def main() -> None:
    from fhir_load import DEFAULT_DB, prepare

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--publications", type=int, default=60)
    parser.add_argument("--ldap-rate", type=float, default=900.0)
    parser.add_argument("--fhir-rate", type=float, default=150.0)
    parser.add_argument("--seconds-each", type=float, default=2.0,
                        help="Expected seconds per publication (the loads run that long per publication).")
    parser.add_argument("--no-write", action="store_true", help="Do not append to docs/benchmarks.md.")
    args = parser.parse_args()

    prepare(args.db)
    token, key, techs = setup(args.db)
    http_port, ldap_port = free_port(), free_port()
    server = start(args.db, http_port, ldap_port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http:
            wait_ready(http, key, ldap_port)
        seconds = args.publications * args.seconds_each + 30  # the loads outlast the publications
        queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
        loads = [multiprocessing.get_context("fork").Process(target=_ldap_load, args=(ldap_port, args.db, args.ldap_rate, seconds, queue)),
                 multiprocessing.get_context("fork").Process(target=_fhir_load, args=(http_port, key, args.db, args.fhir_rate, seconds, queue))]
        for p in loads:
            p.start()
        time.sleep(10)  # the loads get going (their query mixes are drawn first)
        started = time.time()
        lags = measure(http_port, ldap_port, token, key, techs, args.publications)
        elapsed = time.time() - started
        background = dict(queue.get(timeout=seconds + 120) for _ in loads)
        for p in loads:
            p.join()
    finally:
        server.terminate()
        server.wait(60)
    load_avg = os.getloadavg()[0]
    lines = [
        f"Machine: {machine()}. Store: {args.db}.",
        f"Command: `.venv/bin/python bench/freshness.py --publications {args.publications} "
        f"--ldap-rate {args.ldap_rate:.0f} --fhir-rate {args.fhir_rate:.0f}`; {args.publications} publications in "
        f"{elapsed:.0f} s, each adding one ORG box to a domain; 1-minute load average at the end {load_avg:.1f}.",
        f"Background load achieved: LDAP {background['ldap'].get('per_second', 0):.0f} searches/s "
        f"(p99 {background['ldap'].get('p99_ms', 0):.1f} ms), FHIR {background['fhir']['per_second']:.0f} "
        f"searches/s (p99 {background['fhir']['p99_ms']:.1f} ms, {background['fhir']['errors']} non-200).",
        "",
        "| from the publication's commit to | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    for name, values in lags.items():
        lines.append(f"| {name} | " + " | ".join(f"{pct(values, p):.2f} s" for p in (50, 90, 99, 100)) + " |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = ROOT / "docs" / "benchmarks.md"
        stamp = time.strftime("%Y-%m-%d %H:%M")
        doc.write_text(doc.read_text().rstrip() + f"\n\n### Freshness run of {stamp}\n\n{text}\n")


if __name__ == "__main__":
    main()
