"""Benchmark: the public web search page under load, at national scale.

    python bench/web_load.py [--db URL] [--professionals 1950000] [--requests 3000]
                             [--concurrency 4] [--workers 2] [--seed 1]

Serves the real app (`annuaire serve --http-workers N`) over a store holding the
national dataset (generated and imported once into bench/out/ when no --db is
given), then sends a mix of searches drawn from the data itself (family-name
prefixes of 3 to 8 letters, "prénom nom" and "nom prénom" without accents,
professions and savoir-faire words, cities, départements, professions in a
city, MSSanté addresses and @domains, form filters, later result pages) from
`--concurrency` client threads. Reports p50/p95/p99 per kind of search and
overall, and requests/s. Target: p95 <= 150 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import unicodedata
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    NATIONAL,
    OUT,
    dataset,
    free_port,
    machine,
    serve_http,
    wait_http,
    warm,
)

TRADES = [
    "médecin", "infirmière", "infirmier", "pharmacien", "kiné", "masseur-kinésithérapeute", "sage-femme",
    "dentiste", "cardiologue", "psychiatre", "pédiatre", "dermatologue", "radiologue", "médecin généraliste",
    "orthophoniste", "ophtalmologiste", "gynécologue", "anesthésiste", "podologue", "psychomotricien",
]



def national_store(professionals: int) -> str:
    """The URL of a SQLite store holding the generated dataset (imported once, cached)."""
    db = OUT / f"web-{professionals}.sqlite"
    if professionals == NATIONAL and (OUT / "web-national.sqlite").exists():
        db = OUT / "web-national.sqlite"
    url = f"sqlite:///{db}"
    if not db.exists():
        folder = dataset(professionals)
        files = [str(p) for p in sorted(folder.glob("*.zip"))]
        print(f"importing {len(files)} files into {db}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "annuaire", "--quiet", "--db", url, "import", "--no-render", *files], check=True)
    return url


def plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def query_mix(url: str, n: int, seed: int) -> list[tuple[str, str]]:
    """(kind, path) requests drawn from the store's own data."""
    from sqlalchemy import text

    from annuaire.store import open_store

    rng = random.Random(seed)
    store = open_store(url)
    with store.read() as conn:
        max_person = conn.execute(text("SELECT max(id) FROM person")).scalar() or 0
        max_box = conn.execute(text("SELECT max(id) FROM mailbox")).scalar() or 0
        max_structure = conn.execute(text("SELECT max(id) FROM structure")).scalar() or 0

        def sample(sql: str, maximum: int, k: int) -> list:
            ids = ",".join(str(rng.randint(1, maximum)) for _ in range(k))
            return conn.execute(text(sql.replace("IDS", ids))).all()

        persons = [
            (r[0] or "", r[1])
            for r in sample("SELECT first_name, last_name FROM person WHERE active AND id IN (IDS)", max_person, n)
            if r[1]
        ]
        boxes = sample(
            "SELECT address, domain FROM mailbox WHERE active AND NOT liste_rouge AND id IN (IDS)", max_box, n // 2
        )
        places = sample(
            "SELECT commune_label, dept_code FROM structure WHERE active AND commune_label <> '' AND id IN (IDS)",
            max_structure,
            n // 2,
        )
        skills = [r[0] for r in conn.execute(text("SELECT DISTINCT code FROM skill LIMIT 200"))]
        id_nats = [r[0] for r in sample("SELECT id_nat FROM person WHERE active AND id IN (IDS)", max_person, 200)]
        tech_ids = [
            r[0] for r in sample("SELECT tech_id FROM structure WHERE active AND id IN (IDS)", max_structure, 200)
        ]
    store.dispose()

    def path(**params: object) -> str:
        return "/?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})

    def person() -> tuple[str, str]:
        return rng.choice(persons)

    def city() -> str:
        return rng.choice(places)[0]

    def dept() -> str:
        return rng.choice(places)[1]

    def filters() -> str:
        sf = rng.choice(skills) if rng.random() < 0.3 else None
        profession = rng.choice(["10", "60", "70", "21", "40", "50", "91"])
        return path(profession=profession, departement=dept(), savoir_faire=sf)

    # (weight in %, kind, request): mostly names, as people look for a correspondent.
    mix = [
        (25, "family-name prefix (3-8 letters)", lambda: path(q=person()[1][: rng.randint(3, 8)].lower())),
        (15, "prénom nom", lambda: path(q="{} {}".format(*person()))),
        (8, "nom prénom, no accents", lambda: path(q=plain("{1} {0}".format(*person())).lower())),
        (4, "family name + city", lambda: path(q=f"{person()[1]} {city()}")),
        (5, "profession / savoir-faire", lambda: path(q=rng.choice(TRADES))),
        (10, "profession + city", lambda: path(q=f"{rng.choice(TRADES)} {city()}")),
        (3, "city", lambda: path(q=city())),
        (2, "département", lambda: path(q=dept())),
        (8, "full address", lambda: path(q=rng.choice(boxes)[0])),
        (3, "@domain", lambda: path(q="@" + rng.choice(boxes)[1])),
        (6, "filters (profession, département, savoir-faire)", filters),
        (2, "ORG boxes of a département", lambda: path(type="ORG", departement=dept())),
        (5, "pages 2-5", lambda: path(q=person()[1][:3].lower(), page=rng.randint(2, 5))),
        (2, "professional page", lambda: f"/pro/{rng.choice(id_nats)}"),
        (2, "structure page", lambda: f"/structure/{rng.choice(tech_ids)}"),
    ]
    weights = [w for w, _, _ in mix]

    def one() -> tuple[str, str]:
        _, kind, make = rng.choices(mix, weights)[0]
        return kind, make()

    return [one() for _ in range(n)]


def start_server(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = serve_http(url, port, workers)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/aide", proc)
    return proc, base


def run(base: str, requests: list[tuple[str, str]], concurrency: int) -> tuple[dict[str, list[float]], float, int]:
    """Send the requests from `concurrency` threads; (latencies by kind, wall seconds, errors)."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    lock = threading.Lock()
    queue = iter(requests)

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                kind, path = item
                start = time.perf_counter()
                response = client.get(path)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies[kind].append(elapsed)
                    if response.status_code != 200:
                        errors += 1
                        print(f"{response.status_code} {path}", file=sys.stderr)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def report(latencies: dict[str, list[float]], wall: float, errors: int, label: str) -> None:
    every = [v for values in latencies.values() for v in values]
    searches = [v for kind, values in latencies.items() if not kind.endswith(" page") for v in values]
    print(f"\n### {label}\n")
    print(f"{len(every)} requests in {wall:.1f} s: **{len(every) / wall:.0f} requests/s**, "
          f"p50 **{pct(every, 50):.0f} ms**, p95 **{pct(every, 95):.0f} ms**, p99 {pct(every, 99):.0f} ms, "
          f"errors {errors}; search page only: p50 {pct(searches, 50):.0f} ms, "
          f"**p95 {pct(searches, 95):.0f} ms**; load average {os.getloadavg()[0]:.1f}\n")
    print("| kind | requests | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for kind in sorted(latencies, key=lambda k: -statistics.median(latencies[k])):
        values = latencies[kind]
        print(f"| {kind} | {len(values)} | {pct(values, 50):.0f} | {pct(values, 95):.0f} | {max(values) * 1000:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="", help="store URL (default: the national dataset under bench/out/)")
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    url = args.db or national_store(args.professionals)
    print(machine())
    print(f"store: {url.split('@')[-1]}; load average before: {os.getloadavg()[0]:.1f}")
    requests = query_mix(url, args.requests, args.seed)
    warmup = query_mix(url, 300, args.seed + 1)
    warm(url)
    proc, base = start_server(url, args.workers)
    try:
        run(base, warmup, args.concurrency)
        sequential, wall1, errors1 = run(base, requests[: max(300, args.requests // 5)], 1)
        report(sequential, wall1, errors1, "one client at a time (latency)")
        loaded, wall, errors = run(base, requests, args.concurrency)
        report(loaded, wall, errors, f"{args.concurrency} concurrent clients, {args.workers} server processes")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
