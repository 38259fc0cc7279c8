"""What a wrong operator token costs the server, and the others' latency meanwhile.

    .venv/bin/python bench/auth_failures.py [--seconds 5]

A server (`annuaire.http.app`, one process) on a small store; 8 connections send
wrong tokens naming an existing operator as fast as they can while another
operator keeps listing its domains from another address. Three runs:

- `scrypt, no throttle`: the token stored in the former scrypt form and no
  throttle, i.e. every wrong token costs one scrypt (the behaviour before);
- `hmac, no throttle`: the HMAC form, no throttle;
- `hmac, throttle`: the HMAC form with the default throttle (20 failures a
  minute per address).

Printed: the server's CPU per second of flood, wrong tokens answered per
second, and the p50/p99 latency of the honest client (alone first, for
reference). Also the CPU of one verification in-process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

SERVER = r"""
import sys, time
from annuaire.config import Settings
from annuaire.http.app import create_app
from annuaire.http.guard import server_options
from annuaire.store import open_store
import uvicorn
store = open_store(sys.argv[1])
settings = Settings(auth_failures_per_address=int(sys.argv[3]), auth_failures_per_operator=0,
                    extractions_dir=sys.argv[4])
uvicorn.run(create_app(store, settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="error",
            **server_options(settings))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(db: str, throttle: int, seconds: float, token: str, wrong: str, tmp: str) -> dict[str, float]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", SERVER, db, str(port), str(throttle), tmp])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/api/v1/openapi.json")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        honest = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "10.0.0.2"}
        with httpx.Client(base_url=base, headers=honest) as c:
            alone = []
            for _ in range(100):
                t = time.perf_counter()
                assert c.get("/api/v1/domains").status_code == 200
                alone.append(time.perf_counter() - t)
        stop = threading.Event()
        answered = [0]

        def flood() -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {wrong}",
                                                      "X-Forwarded-For": "192.0.2.66"}) as c:
                while not stop.is_set():
                    c.get("/api/v1/domains")
                    answered[0] += 1

        threads = [threading.Thread(target=flood) for _ in range(8)]
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        for t in threads:
            t.start()
        during = []
        with httpx.Client(base_url=base, headers=honest) as c:
            while time.monotonic() - t0 < seconds:
                t = time.perf_counter()
                assert c.get("/api/v1/domains").status_code == 200
                during.append(time.perf_counter() - t)
                time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(server.pid) - cpu0

        def q(values: list[float], p: float) -> float:
            return statistics.quantiles(values, n=100)[p - 1] * 1000 if len(values) > 2 else float("nan")

        return {"cpu": cpu / elapsed, "wrong/s": answered[0] / elapsed, "alone p50": q(alone, 50),
                "alone p99": q(alone, 99), "p50": q(during, 50), "p99": q(during, 99)}
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    from sqlalchemy import update

    from annuaire.mailboxes import operators
    from annuaire.store import credentials, open_store
    from annuaire.store.schema import operator

    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.sqlite"
        store = open_store(db)
        _, token = operators.add_operator(store, "alpha", ["a.mssante.fr"])  # named by the wrong tokens
        _, honest = operators.add_operator(store, "beta", ["b.mssante.fr"])  # the operator served meanwhile
        wrong = "ann_1_" + "x" * 43
        with store.read() as conn:
            key = credentials.server_key(conn)
        n = 20
        t = time.process_time()
        stored = operators.hash_token(token)
        for _ in range(n):
            operators.verify_token(wrong, stored)
        scrypt_ms = (time.process_time() - t) / n * 1000
        t = time.process_time()
        for _ in range(100_000):
            credentials.matches(key, wrong, credentials.digest(key, token))
        hmac_us = (time.process_time() - t) / 100_000 * 1e6 / 2  # digest twice per loop
        print(f"one verification: scrypt {scrypt_ms:.1f} ms CPU, HMAC-SHA-256 {hmac_us:.1f} µs CPU")
        print(f"{'':22} {'server CPU':>10} {'wrong/s':>8} {'alone p50/p99 ms':>17} {'flood p50/p99 ms':>17}")
        for label, form, throttle in (("scrypt, no throttle", "scrypt", 0), ("hmac, no throttle", "hmac", 0),
                                      ("hmac, throttle 20/min", "hmac", 20)):
            value = operators.hash_token(token) if form == "scrypt" else credentials.digest(key, token)
            with store.write() as conn:
                conn.execute(update(operator).where(operator.c.id == 1).values(token_hash=value))
            r = run(db, throttle, args.seconds, honest, wrong, tmp)
            print(f"{label:22} {r['cpu']:>9.2f}c {r['wrong/s']:>8.0f} {r['alone p50']:>8.1f}/{r['alone p99']:<8.1f}"
                  f" {r['p50']:>8.1f}/{r['p99']:<8.1f}")
        store.dispose()


if __name__ == "__main__":
    main()
