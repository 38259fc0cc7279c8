"""Benchmark: fronts reading a PostgreSQL hot-standby replica (`annuaire serve --read-db`).

    .venv/bin/python bench/replicas.py [--professionals 100000] [--duration 20] [--no-write]

1. a primary and a streaming hot standby are built in a temporary directory
   (tests/pgcluster.py: initdb, pg_basebackup), the generated dataset
   (bench/common.py, cached under bench/out/) imported into the primary and
   rendered (`annuaire import`), a FHIR key added;
2. two fronts, `annuaire serve --db <primary> --read-db <replica>` (one HTTP
   worker, one LDAP worker each, the anti-extraction limits raised for the load
   generator), are started on the same machine;
3. LDAP: the mail-client search mix of bench/ldap_load.py (70 % autocomplete,
   20 % contains, 10 % exact), closed loop, one load process per front; FHIR:
   the search mix of bench/fhir_load.py, keep-alive connections, closed loop.
   Each is run `--duration` seconds against one front, then against both at
   once. The replica's replay lag (the primary's `pg_stat_replication.replay_lag`)
   is sampled meanwhile, and a publication made through front 1 during the
   two-front FHIR run is timed until front 2 serves it (FHIR);
4. the results are written to docs/benchmarks.md, section "PostgreSQL replicas".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fhir_load  # noqa: E402  (bench scripts import each other by path)
import ldap_load  # noqa: E402
from common import dataset, machine  # noqa: E402

from tests import pgcluster  # noqa: E402

LIMITS = ("entries_per_minute=1000000000,daily_floor=1000000000,unselective_share=1.0,"
          "max_connections_per_address=100000,anonymous_size_limit=100")
SECTION = "## PostgreSQL replicas"


class Front:
    """One `annuaire serve --read-db` process."""

    def __init__(self, pair: pgcluster.Pair, n: int, work: Path) -> None:
        self.http_port, self.ldap_port = pgcluster.free_port(), pgcluster.free_port()
        env = {**os.environ, "ANNUAIRE_EXTRACTIONS_TIME": "off", "ANNUAIRE_EXTRACTIONS_DIR": str(work / "ex"),
               "ANNUAIRE_LDAP_LIMITS": LIMITS, "ANNUAIRE_FHIR_RATE_LIMIT": "1000000",
               "ANNUAIRE_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "0", "ANNUAIRE_AUTH_FAILURES_PER_ADDRESS": "0"}
        self.log = work / f"front{n}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "annuaire", "--db", pair.primary.url, "serve", "--read-db", pair.replica.url,
                 "--http-port", str(self.http_port), "--ldap-port", str(self.ldap_port), "--http-workers", "1",
                 "--ldap-workers", "1", "--access-log", "off"], stdout=out, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"a front exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.http_port}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"a front was not ready within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        ldap_load.stop(self.process)


class LagSampler:
    """The replica's replay lag as the primary sees it, every 0.5 s while a run lasts."""

    def __init__(self, pair: pgcluster.Pair) -> None:
        self.pair = pair
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            rows = self.pair.primary.sql("SELECT coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication")
            self.samples.extend(float(r[0]) for r in rows)

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def text(self) -> str:
        if not self.samples:
            return "–"
        return f"{max(self.samples) * 1000:.0f} ms max"


def ldap_runs(fronts: list[Front], requests: list, duration: float, connections: int) -> dict:
    """Closed-loop LDAP load on these fronts at once (one load process each): their summed rate."""
    results: list[dict] = [{} for _ in fronts]

    def one(i: int) -> None:
        ldap_load.run_load(fronts[i].ldap_port, requests, 1, connections, 3)  # warm-up
        results[i] = ldap_load.run_load(fronts[i].ldap_port, requests, 1, connections, duration)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(fronts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes: dict = {}
    for r in results:
        for code, n in r["codes"].items():
            codes[code] = codes.get(code, 0) + n
    return {"per_second": sum(r["per_second"] for r in results), "p50_ms": max(r["p50_ms"] for r in results),
            "p99_ms": max(r["p99_ms"] for r in results), "codes": codes}


def fhir_runs(fronts: list[Front], key: str, work: list, duration: float, connections: int) -> dict:
    """Closed-loop FHIR searches on these fronts at once: summed rate, worst percentiles."""

    async def both() -> list[tuple[list, list]]:
        await asyncio.gather(*(fhir_load.load(f.http_port, key, work, 3, connections) for f in fronts))  # warm-up
        return await asyncio.gather(*(fhir_load.load(f.http_port, key, work, duration, connections)
                                      for f in fronts))

    parts = asyncio.run(both())
    every = [e for results, _ in parts for _, e, _ in results]
    errors = sum(len(errs) for _, errs in parts)
    return {"per_second": len(every) / duration, "p50_ms": fhir_load.percentile(every, .5) * 1000,
            "p99_ms": fhir_load.percentile(every, .99) * 1000, "errors": errors}


def visibility(pair: pgcluster.Pair, fronts: list[Front], token: str, key: str) -> float:
    """Seconds from a publication's answer on front 1 to front 2's FHIR serving it."""
    import httpx
    import orjson

    holder = pair.primary.sql("SELECT id_nat FROM person WHERE active AND profession_code = '10' LIMIT 1")[0][0]
    address = f"bench.{int(time.time())}@bench.mssante.fr"
    body = orjson.dumps({"mailboxes": [{"address": address, "type": "PER", "holder": holder}]})
    r = httpx.put(f"http://127.0.0.1:{fronts[0].http_port}/api/v1/domains/bench.mssante.fr/mailboxes",
                  content=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                  timeout=60)
    if r.status_code != 200:
        raise SystemExit(f"publication refused: {r.status_code} {r.text[:500]}")
    answered = time.monotonic()
    url = f"http://127.0.0.1:{fronts[-1].http_port}/fhir/v2/Practitioner"
    while time.monotonic() - answered < 30:
        found = httpx.get(url, params={"mailbox-mss": address}, headers={"ESANTE-API-KEY": key}, timeout=30)
        if found.status_code == 200 and address in found.text:
            return time.monotonic() - answered
        time.sleep(0.02)
    raise SystemExit("the publication did not reach front 2 within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--professionals", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--ldap-connections", type=int, default=8, help="per front")
    parser.add_argument("--fhir-connections", type=int, default=8, help="per front")
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    args = parser.parse_args()
    reason = pgcluster.unavailable()
    if reason:
        raise SystemExit(reason)

    from annuaire.fhir.auth import add_key
    from annuaire.mailboxes import operators
    from annuaire.store import open_store

    folder = dataset(args.professionals)
    pair = pgcluster.Pair()
    fronts: list[Front] = []
    try:
        pair.start()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "annuaire", "--db", pair.primary.url, "-q", "import",
                        *sorted(str(p) for p in folder.glob("*.zip"))], check=True)
        imported = time.perf_counter() - started
        store = open_store(pair.primary.url, upgrade=False)
        key = add_key(store, "bench", rate_limit=1_000_000)
        _, token = operators.add_operator(store, "bench", ["bench.mssante.fr"])
        store.dispose()
        pair.wait_replayed(120)
        print(f"imported {args.professionals:,} professionals into the primary in {imported:.0f} s", file=sys.stderr)
        requests = ldap_load.request_mix(ldap_load.sample_mailboxes(pair.primary.url, 3000, 1), 20_000, 2, 50)
        work = fhir_load.queries(pair.primary.url)
        fronts = [Front(pair, n, pair.root) for n in (1, 2)]
        for front in fronts:
            front.wait_ready()
        rows = []
        for label, chosen in (("one front", fronts[:1]), ("two fronts", fronts)):
            with LagSampler(pair) as lag:
                ldap = ldap_runs(chosen, requests, args.duration, args.ldap_connections)
            print(f"  LDAP, {label}: {ldap}", file=sys.stderr)
            rows.append(("LDAP searches", label, ldap["per_second"], ldap["p50_ms"], ldap["p99_ms"],
                         f"codes {ldap['codes']}", lag.text()))
            with LagSampler(pair) as lag:
                fhir = fhir_runs(chosen, key, work, args.duration, args.fhir_connections)
            print(f"  FHIR, {label}: {fhir}", file=sys.stderr)
            rows.append(("FHIR searches", label, fhir["per_second"], fhir["p50_ms"], fhir["p99_ms"],
                         f"{fhir['errors']} non-200", lag.text()))
        seen = visibility(pair, fronts, token, key)
        print(f"  publication on front 1 served by front 2's FHIR after {seen * 1000:.0f} ms", file=sys.stderr)
    finally:
        for front in fronts:
            front.stop()
        pair.close()

    text = "\n".join([
        SECTION, "",
        f"`bench/replicas.py` ({time.strftime('%Y-%m-%d')}): {machine()}; PostgreSQL "
        f"{pgcluster.binaries().parent.name} primary and streaming hot standby on the same machine "  # type: ignore[union-attr]
        f"(tests/pgcluster.py: fsync off, otherwise defaults with `hot_standby_feedback=on`); "
        f"{args.professionals:,} generated professionals imported into the primary ({imported:.0f} s); two fronts "
        "`annuaire serve --db <primary> --read-db <replica> --http-workers 1 --ldap-workers 1`, and the load "
        "generators, all on these two cores, which other work shared while it ran (the figures are a floor, "
        f"and say how the pieces fit, not what a front does on a machine of its own). {args.duration:.0f} s per run, "
        f"closed loop: LDAP the mail-client mix of bench/ldap_load.py ({args.ldap_connections} connections per "
        f"front), FHIR the search mix of bench/fhir_load.py ({args.fhir_connections} keep-alive connections per "
        "front); p50/p99 are the worst front's.",
        "",
        "| load | fronts | searches/s (sum) | p50 ms | p99 ms | answers | replica replay lag |",
        "|---|---|---|---|---|---|---|",
        *(f"| {k} | {f} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {codes} | {lag} |"
          for k, f, rate, p50, p99, codes, lag in rows),
        "",
        f"A publication through front 1 (written to the primary, FHIR cache rendered there before it answers) was "
        f"served by front 2's FHIR search, read from the replica, {seen * 1000:.0f} ms after its answer.",
        "",
    ])
    print(text)
    if not args.no_write:
        write_section(text)


def write_section(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    old = path.read_text(encoding="utf-8")
    start = old.find(SECTION)
    if start >= 0:
        end = old.find("\n## ", start + len(SECTION))
        old = old[:start] + (old[end + 1:] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")


if __name__ == "__main__":
    main()
