"""FHIR API load benchmark at national scale.

    .venv/bin/python bench/fhir_load.py [--db URL] [--duration 30] [--connections 16]

1. the national synthetic dataset (≈1.95 M professionals, bench/common.py)
   is imported into the store if the store is empty, then rendered
   (`annuaire fhir render`);
2. `annuaire serve --http-workers 4` serves the HTTP app (4 worker processes,
   one SO_REUSEPORT socket each);
3. a minimal keep-alive HTTP/1.1 client (asyncio, one process, on the same
   machine) sends a mix of searches drawn from the data: family-name prefixes
   of 3 to 8 letters, `name:contains`, identifier, `mailbox-mss:contains=@domain`
   and family prefix + `_revinclude`, all with the default `_count` (50);
4. p50/p99 latency per kind and overall, searches per second; the result is
   written to docs/benchmarks.md, section "FHIR API".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_DB = f"sqlite:///{ROOT / 'bench' / 'out' / 'fhir-national.sqlite'}"



def prepare(url: str) -> None:
    from sqlalchemy import func, select

    from annuaire.fhir.cache import refresh
    from annuaire.store import open_store
    from annuaire.store.schema import person

    store = open_store(url)
    with store.read() as conn:
        persons = conn.execute(select(func.count()).select_from(person)).scalar()
    if not persons:
        from common import dataset

        from annuaire.referential.importer import import_paths

        folder = dataset()
        started = time.perf_counter()
        import_paths(store, sorted(folder.glob("*.zip")))
        print(f"imported in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    stats = refresh(store)
    print(f"rendered {stats.rendered:,} ({stats.changed:,} changed) in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    store.dispose()


def queries(url: str, seed: int = 7) -> list[tuple[str, str]]:
    """(kind, path) pairs drawn from the data, shuffled."""
    from sqlalchemy import func, select

    from annuaire.store import open_store
    from annuaire.store.schema import mailbox, person

    rng = random.Random(seed)
    store = open_store(url)
    with store.read() as conn:
        top = conn.execute(select(func.max(person.c.id))).scalar()
        sample = []
        while len(sample) < 2000:
            ids = [rng.randint(1, top) for _ in range(500)]
            sample += conn.execute(
                select(person.c.last_name_key, person.c.id_pp).where(person.c.id.in_(ids) & person.c.active)
            ).all()
        domains = list(conn.execute(select(mailbox.c.domain).where(mailbox.c.active).distinct()).scalars())
    store.dispose()
    out: list[tuple[str, str]] = []
    names = [s.last_name_key for s in sample if s.last_name_key and len(s.last_name_key.replace(" ", "")) >= 8]
    for _ in range(3000):
        name = rng.choice(names)
        n = rng.randint(3, 8)
        out.append((f"family prefix {n}", f"/fhir/v2/Practitioner?family={quote(name[:n])}"))
    for _ in range(1000):
        name = rng.choice(names)
        start = rng.randint(0, max(0, len(name) - 5))
        frag = name[start : start + 5].strip()
        if len(frag) >= 3:
            out.append(("name:contains", f"/fhir/v2/Practitioner?name:contains={quote(frag)}"))
    for _ in range(1000):
        out.append(("identifier", f"/fhir/v2/Practitioner?identifier={rng.choice(sample).id_pp}"))
    for _ in range(1000):
        out.append(("mailbox-mss:contains=@domain",
                    f"/fhir/v2/Practitioner?mailbox-mss:contains=%40{quote(rng.choice(domains))}"))
    for _ in range(1000):
        name = rng.choice(names)
        out.append(("family 5 + _revinclude",
                    f"/fhir/v2/Practitioner?family={quote(name[:5])}&_revinclude=PractitionerRole:practitioner"))
    rng.shuffle(out)
    return out


async def _connection(port: int, key: str, work: list[tuple[str, str]], results: list, stop: float,
                      errors: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = random.randrange(len(work))
    while time.perf_counter() < stop:
        kind, path = work[i % len(work)]
        i += 1
        request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nESANTE-API-KEY: {key}\r\n\r\n".encode()
        t0 = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        elapsed = time.perf_counter() - t0
        if status != 200:
            errors.append((status, path))
        results.append((kind, elapsed, length))
    writer.close()


async def load(port: int, key: str, work: list[tuple[str, str]], seconds: float, connections: int) -> tuple[list, list]:
    results: list = []
    errors: list = []
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(_connection(port, key, work, results, stop, errors) for _ in range(connections)))
    return results, errors


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def report(results: list, seconds: float, errors: list, meta: str) -> str:
    kinds: dict[str, list] = {}
    for kind, elapsed, size in results:
        kinds.setdefault(kind.split(" ")[0] if kind.startswith("family prefix") else kind, []).append((elapsed, size))
    lines = [
        "## FHIR API",
        "",
        meta,
        "",
        "| searches | count | p50 ms | p99 ms | mean KiB |",
        "|---|---|---|---|---|",
    ]
    for kind in sorted(kinds):
        values = [e for e, _ in kinds[kind]]
        size = statistics.mean(s for _, s in kinds[kind]) / 1024
        label = "family prefix (3-8 letters)" if kind == "family" else kind
        lines.append(f"| {label} | {len(values):,} | {percentile(values, .5)*1000:.1f} | {percentile(values, .99)*1000:.1f} | {size:.0f} |")
    every = [e for _, e, _ in results]
    lines.append(f"| **all** | {len(every):,} | **{percentile(every, .5)*1000:.1f}** | **{percentile(every, .99)*1000:.1f}** | |")
    lines += ["", f"**{len(every) / seconds:,.0f} searches/s**; {len(errors)} non-200 answers.", ""]
    return "\n".join(lines)


def service_times(url: str, work: list[tuple[str, str]], n: int = 1500) -> str:
    """One search at a time, in process (no HTTP, no queueing): what a search costs."""
    from urllib.parse import parse_qsl, urlsplit

    from annuaire.config import Settings
    from annuaire.fhir import params
    from annuaire.fhir.app import FhirApi
    from annuaire.store import open_store

    store = open_store(url)
    api = FhirApi(store, Settings())
    by: dict[str, list[tuple[float, float]]] = {}
    for kind, path in work[:n]:
        u = urlsplit(path)
        rtype = u.path.rsplit("/", 1)[1]
        search = params.parse(rtype, parse_qsl(u.query), 50, 1000)
        c0, w0 = time.process_time(), time.perf_counter()
        api._run(search, None, "http://bench" + path, "http://bench/fhir/v2")
        label = "family prefix (3-8 letters)" if kind.startswith("family prefix") else kind
        by.setdefault(label, []).append((time.perf_counter() - w0, time.process_time() - c0))
    store.dispose()
    lines = ["### One search at a time, in process (no HTTP, no queueing)", "",
             "| searches | count | p50 ms | p99 ms | CPU ms (mean) |", "|---|---|---|---|---|"]
    every: list[float] = []
    for label in sorted(by):
        walls = [w for w, _ in by[label]]
        every += walls
        lines.append(f"| {label} | {len(walls)} | {percentile(walls, .5)*1000:.1f} | {percentile(walls, .99)*1000:.1f} "
                     f"| {statistics.mean(c for _, c in by[label])*1000:.1f} |")
    lines.append(f"| **all** | {len(every)} | **{percentile(every, .5)*1000:.1f}** | **{percentile(every, .99)*1000:.1f}** | |")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find("## FHIR API")
    if start >= 0:
        end = old.find("\n## ", start + 5)
        old = old[:start] + (old[end + 1 :] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("ANNUAIRE_DB", DEFAULT_DB))
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--connections", default="4,16",
                        help="Comma-separated numbers of keep-alive connections, one run each (default 4,16).")
    parser.add_argument("--workers", type=int, default=4,
                        help="HTTP worker processes (default 4: two per core, so that few keep-alive clients spread)")
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    args = parser.parse_args()

    from common import cpu_seconds, free_port, machine, serve_http, wait_http, warm

    from annuaire.fhir.auth import add_key
    from annuaire.store import open_store

    prepare(args.db)
    warm(args.db)
    work = queries(args.db)
    store = open_store(args.db)
    key = add_key(store, f"bench-{os.getpid()}-{int(time.time())}", rate_limit=1_000_000)
    store.dispose()
    port = free_port()
    server = serve_http(args.db, port, args.workers)
    try:
        wait_http(f"http://127.0.0.1:{port}/fhir/v2/metadata", server)
        asyncio.run(load(port, key, work, 5, 16))  # warm-up
        runs = []
        for connections in [int(c) for c in args.connections.split(",")]:
            server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
            results, errors = asyncio.run(load(port, key, work, args.duration, connections))
            runs.append((connections, results, errors, cpu_seconds(server.pid) - server_cpu,
                         time.process_time() - client_cpu, os.getloadavg()[0]))
    finally:
        server.terminate()
        server.wait(10)
    engine = args.db.split(":", 1)[0]
    meta = (f"{engine} store, ~1.95 M practitioners (4.6 M resources); `annuaire serve --http-workers {args.workers}` and the load "
            f"client on the same machine: {machine()}; each run {args.duration:.0f} s after a 5 s warm-up; "
            "default `_count` (50), best-effort `total` included.")
    sections = []
    for connections, results, errors, server_cpu, client_cpu, load1 in runs:
        text = report(results, args.duration, errors, f"{connections} keep-alive connections")
        n = max(1, len(results))
        text += (f"Server CPU per search: {1000 * server_cpu / n:.2f} ms, i.e. {n / server_cpu:,.0f} searches/s "
                 f"per fully available core; load client {1000 * client_cpu / n:.2f} ms per search; 1-minute load "
                 f"average at the end of the run: {load1:.1f} on {os.cpu_count()} cores.\n")
        if errors:
            print("first errors:", errors[:5], file=sys.stderr)
        sections.append(text.replace("## FHIR API\n\n", "### ", 1))
    cpu_ms = min(1000 * r[3] / max(1, len(r[1])) for r in runs)
    loads = ", ".join(f"{r[5]:.1f}" for r in runs)
    reading = (
        f"Reading: the targets (issue 24) are ≥ 1,000 searches/s with p99 ≤ 25 ms at 4 keep-alive connections on "
        f"2 cores, and ≤ 1.5 ms of server CPU per search. The server spends {cpu_ms:.1f} ms "
        f"of CPU per search (HTTP, query, Bundle), so two fully available cores serve at most "
        f"~{2000 / cpu_ms:,.0f} searches/s. The machine's load average during the runs ({loads}) shows other "
        "processes competing for the same 2 cores: the latencies above include waiting for a core, and the "
        "searches/s are what was left to this benchmark, not the capacity.\n"
    )
    sections.append(service_times(args.db, work))
    text = "## FHIR API\n\n`bench/fhir_load.py`: " + meta + "\n\n" + "\n".join(sections) + "\n" + reading
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
