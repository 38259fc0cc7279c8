"""Benchmark: operator publications at national scale (issue 3).

    .venv/bin/python bench/publication.py [--professionals 1950000] [--runs 3] [--pg ADMIN_URL] [--no-sqlite]

For each engine, once (not timed): a fresh store, the day-0 referential
imported (PS_LibreAcces), the day-0 MSSanté file split per domain into JSON
lists, ~340 operators owning the domains (round robin), the publication API
served by `annuaire serve` in its own process, every operator's token verified
once. Then, each timed as the median of --runs runs:

1. the largest domain (~62k boxes), first publication (the domain is emptied
   between runs);
2. the same domain republished with 1 % changes (0.6 % updated, 0.2 %
   deleted, 0.2 % created);
3. every domain of the file (~5k domains, ~535k boxes), one PUT after the
   other, into empty mailbox tables;
4. for comparison, the national-mirror import of the same file
   (`annuaire.mailboxes.national.import_mssante_file`) into empty tables.

"server" is the `Server-Timing` of the PUT (from the request to the report,
body read and parsed, validated, applied and committed); "client" adds JSON
encoding and the HTTP round trip. Results go to docs/benchmarks.md, section
"Publication".
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import (
    NATIONAL,
    cpu_seconds,
    dataset,
    free_port,
    machine,
    median,
    serve_http,
    wait_http,
)

from annuaire.config import Settings
from annuaire.mailboxes import operators
from annuaire.mailboxes.national import import_mssante_file, read_entries
from annuaire.nationalfiles.sources import find_sources
from annuaire.progress import Silent
from annuaire.store import Store, open_store

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
OPERATORS = 340
SECTION = "Publication"


def domain_lists(mss_zip: Path) -> dict[str, list[dict[str, Any]]]:
    """The national file as one JSON list per domain (what each operator would send)."""
    entries, _ = read_entries(find_sources([mss_zip])[0], Silent())
    lists: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        item: dict[str, Any] = {"address": e.address, "type": e.type}
        if e.holder:
            item["holder"] = e.holder
        if e.structure:
            item["structure"] = (e.structure_type or "") + e.structure
        if e.service:
            item["service"] = e.service
        if e.dematerialisation:
            item["dematerialisation"] = e.dematerialisation.lower() in ("true", "1", "o")
        lists[e.address.rpartition("@")[2]].append(item)
    return dict(lists)


def one_percent(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """0.6 % updated (dematerialisation flipped), 0.2 % deleted, 0.2 % created."""
    n = len(boxes)
    step = max(1, n // max(1, n * 6 // 1000))
    changed = [dict(b) for b in boxes]
    for i in range(0, n, step):
        changed[i]["dematerialisation"] = not changed[i].get("dematerialisation", False)
    removed = max(1, n // 500)
    changed = changed[removed:]
    persons = [b for b in boxes if b["type"] == "PER"]
    domain = boxes[0]["address"].rpartition("@")[2]
    for i in range(removed):
        changed.append({"address": f"bench.new{i}@{domain}", "type": "PER", "holder": persons[i]["holder"]})
    return changed


def server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
    return float(match.group(1)) if match else float("nan")


def empty_mailboxes(store: Store, domain: str | None = None) -> None:
    from sqlalchemy import delete, update

    from annuaire.store.schema import domain as domain_table
    from annuaire.store.schema import journal, mailbox, run

    with store.write() as conn:
        if domain is None:
            conn.execute(delete(mailbox))
            conn.execute(delete(journal).where(journal.c.entity == "mailbox"))
            conn.execute(delete(run).where(run.c.kind.in_(("publication", "mssante"))))
            conn.execute(update(domain_table).values(version=0, last_published=None))
        else:
            conn.execute(delete(mailbox).where(mailbox.c.domain == domain))
            conn.execute(delete(journal).where(journal.c.scope == domain))
            conn.execute(delete(run).where(run.c.domain == domain))
            conn.execute(update(domain_table).where(domain_table.c.name == domain).values(version=0))
    if store.is_postgresql:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE mailbox")
            conn.exec_driver_sql("VACUUM ANALYZE journal")


def setup(store: Store, ps_zip: Path, lists: dict[str, list]) -> dict[str, str]:
    """Referential import (unless already there) and operators; returns domain -> token."""
    from sqlalchemy import func, select

    from annuaire.referential.importer import import_paths
    from annuaire.store.schema import person

    with store.read() as conn:
        persons = conn.execute(select(func.count()).select_from(person)).scalar()
    if not persons:
        started = time.perf_counter()
        import_paths(store, [ps_zip])
        print(f"  referential imported in {time.perf_counter() - started:.0f} s", flush=True)
    by_size = sorted(lists, key=lambda d: -len(lists[d]))
    groups: dict[int, list[str]] = defaultdict(list)
    for i, name in enumerate(by_size):
        groups[i % OPERATORS].append(name)
    tokens: dict[str, str] = {}
    for n, names in groups.items():
        _, token = operators.add_operator(store, f"operator-{n:03d}", names)
        tokens.update(dict.fromkeys(names, token))
    if store.is_postgresql:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
            # The import's gigabytes of dirty pages are written now, not by the checkpointer
            # during the timed runs.
            conn.exec_driver_sql("CHECKPOINT")
    os.sync()  # the same for a copied SQLite store, in the OS page cache
    return tokens


def put(client: httpx.Client, token: str, domain: str, body: bytes) -> httpx.Response:
    r = client.put(f"/api/v1/domains/{domain}/mailboxes", content=body, params={"confirm_mass_delete": "true"},
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    if r.status_code != 200:
        raise SystemExit(f"{domain}: {r.status_code} {r.text[:2000]}")
    return r


@contextmanager
def served(store: Store) -> Iterator[tuple[str, int]]:
    """`annuaire serve` (HTTP only, one process) on the store: (base URL, server pid).

    The server runs in its own process, as deployed: in a thread of this process,
    its time would include waiting for the GIL while the client thread sends the body."""
    port = free_port()
    server = serve_http(store.url, port, 1, dict(os.environ, ANNUAIRE_MAX_BODY_BYTES=str(1 << 30)))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/api/v1/openapi.json", server)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(30)


def bench_engine(label: str, store: Store, ps_zip: Path, mss_zip: Path, lists: dict[str, list], runs: int) -> dict:
    print(f"{label}: setting up", flush=True)
    tokens = setup(store, ps_zip, lists)
    largest = max(lists, key=lambda d: len(lists[d]))
    first_body = orjson.dumps({"mailboxes": lists[largest]})
    changed_body = orjson.dumps({"mailboxes": one_percent(lists[largest])})
    bodies = {d: orjson.dumps({"mailboxes": boxes}) for d, boxes in lists.items()}
    results: dict[str, Any] = {"largest": largest, "largest_boxes": len(lists[largest]),
                               "domains": len(lists), "boxes": sum(map(len, lists.values()))}
    settings = Settings(max_body_bytes=1 << 30)
    with served(store) as (url, pid), httpx.Client(base_url=url, timeout=600) as client:
        for token in set(tokens.values()):  # verify each token once (scrypt), as a running server would have
            client.get("/api/v1/domains", headers={"Authorization": f"Bearer {token}"})
        first, again = [], []
        for n in range(runs):
            empty_mailboxes(store, largest)
            t, c = time.perf_counter(), cpu_seconds(pid)
            r = put(client, tokens[largest], largest, first_body)
            first.append((server_ms(r) / 1000, time.perf_counter() - t, cpu_seconds(pid) - c))
            results.setdefault("load", []).append(os.getloadavg()[0])
            assert r.json()["created"] == len(lists[largest]), r.json()["created"]
            t, c = time.perf_counter(), cpu_seconds(pid)
            r = put(client, tokens[largest], largest, changed_body)
            again.append((server_ms(r) / 1000, time.perf_counter() - t, cpu_seconds(pid) - c))
            report = r.json()
            print(f"  run {n + 1}: largest first {first[-1][0]:.2f} s, republication {again[-1][0]:.2f} s "
                  f"(+{report['created']} ~{report['updated']} -{report['deleted']})", flush=True)
        results["first"] = first
        results["again"] = again
        every = []
        for n in range(runs):
            empty_mailboxes(store)
            server = 0.0
            t, c = time.perf_counter(), cpu_seconds(pid)
            for name, body in bodies.items():
                server += server_ms(put(client, tokens[name], name, body)) / 1000
            every.append((server, time.perf_counter() - t, cpu_seconds(pid) - c))
            results.setdefault("load", []).append(os.getloadavg()[0])
            print(f"  run {n + 1}: every domain {every[-1][1]:.1f} s (server {server:.1f} s)", flush=True)
        results["every"] = every
    # The national mirror only manages domains without a local operator: detach them all.
    from sqlalchemy import update

    from annuaire.store.schema import domain as domain_table

    with store.write() as conn:
        conn.execute(update(domain_table).values(operator_id=None))
    national = []
    for n in range(runs):
        empty_mailboxes(store)
        t, c = time.perf_counter(), time.process_time()
        summary = import_mssante_file(store, mss_zip, force=True, settings=settings)
        national.append((time.perf_counter() - t, time.process_time() - c))
        assert summary["created"] == results["boxes"], summary["created"]
        print(f"  run {n + 1}: national file import {national[-1][0]:.1f} s (cpu {national[-1][1]:.1f} s)", flush=True)
    results["national"] = national
    return results


def report(all_results: dict[str, dict], professionals: int, runs: int, command: str) -> str:
    loads = [v for r in all_results.values() for v in r.get("load", [])]
    lines = [f"## {SECTION}", "",
             f"- Machine: {machine()}" + (f"; 1-minute load average during the runs: median {median(loads):.1f}"
                                          if loads else ""),
             (f"- Dataset: synthetic national files, {professionals:,} professionals, seed 1, day 0 "
              "(bench/common.py); the MSSanté file split per domain into JSON lists"),
             f"- Command: `{command}`",
             (f"- Median of {runs} runs. \"server\" = the PUT's Server-Timing (body read and parsed, validated, "
              "applied, committed); \"client\" = wall time seen by the client (adds the HTTP round trip); "
              "\"CPU\" = CPU time of the server process (on PostgreSQL the database's own CPU is not "
              "included)."), ""]
    lines += ["| engine | measure | boxes | server | client | CPU | target |",
              "|---|---|---:|---:|---:|---:|---|"]
    for engine, r in all_results.items():
        def cell(values: list[tuple], i: int) -> str:
            return f"{median([v[i] for v in values]):.2f} s"

        for key, label, target in (
            ("first", f"largest domain `{r['largest']}`, first publication", "≤ 2 s server"),
            ("again", "same domain, republication with 1 % changes", "≤ 2 s server"),
            ("every", f"every domain one after the other ({r['domains']:,} PUTs)", "≤ 60 s total"),
        ):
            boxes = r["largest_boxes"] if key != "every" else r["boxes"]
            lines.append(f"| {engine} | {label} | {boxes:,} | {cell(r[key], 0)} | {cell(r[key], 1)} | "
                         f"{cell(r[key], 2)} | {target} |")
        lines.append(f"| {engine} | national file import into empty tables (one transaction) | {r['boxes']:,} | – | "
                     f"{cell(r['national'], 0)} | {cell(r['national'], 1)} | – |")
    lines += ["", READING, ""]
    return "\n".join(lines)


READING = """Reading:
- A first publication of the largest domain inserts ~67k mailbox rows, their trigram index entries (SQLite FTS5,
  filled in one statement) and ~67k journal rows, each a JSON copy of the box; SQL is about half of it, parsing and
  validating the 67k lines most of the rest.
- A republication writes only the changed rows; its cost is reading and validating every line (referential
  lookups are cached per process while the referential is unchanged, so only the first publication after an
  import pays them: that is the first run's extra time).
- Publishing every domain is ~4,600 transactions: on PostgreSQL they commit with `synchronous_commit = off`
  (the durability the SQLite store has with WAL and `synchronous=NORMAL`).
- The cyclic GC is paused while a list is parsed and published (annuaire/gcpause.py)."""


def write_section(text: str) -> None:
    """Replace (or append) our section of docs/benchmarks.md, leaving the others intact."""
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^## {SECTION}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(current):
        current = pattern.sub(lambda _: text + "\n", current)
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default="", help="admin URL of a PostgreSQL server to benchmark too")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave docs/benchmarks.md alone")
    parser.add_argument("--data", type=Path, default=None, help="folder of the day-0 zips (default: bench/out cache)")
    parser.add_argument("--sqlite-copy", type=Path, default=None,
                        help="start from a copy of this SQLite store holding the same referential (skips its import)")
    args = parser.parse_args()
    folder = args.data or dataset(args.professionals)
    ps_zip = next(folder.glob("PS_LibreAcces_*.zip"))
    mss_zip = next(folder.glob("Extraction_Correspondance_MSSante_*.zip"))
    lists = domain_lists(mss_zip)
    print(machine(), flush=True)
    results: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-publication-"))
    print(f"work folder {work}", flush=True)
    try:
        run_engines(args, work, ps_zip, mss_zip, lists, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python bench/publication.py " + " ".join(sys.argv[1:])
    text = report(results, args.professionals, args.runs, command.strip())
    print(text)
    if not args.no_write:
        write_section(text)


def run_engines(args: argparse.Namespace, work: Path, ps_zip: Path, mss_zip: Path, lists: dict, results: dict) -> None:
    if not args.no_sqlite:
        if args.sqlite_copy:
            shutil.copy(args.sqlite_copy, work / "bench.sqlite")
        store = open_store(f"sqlite:///{work / 'bench.sqlite'}")
        try:
            results["SQLite"] = bench_engine("SQLite", store, ps_zip, mss_zip, lists, args.runs)
        finally:
            store.dispose()
    if args.pg:
        from import_referential import drop_pg, fresh_pg

        url, name = fresh_pg(args.pg)
        store = open_store(url)
        try:
            results["PostgreSQL"] = bench_engine("PostgreSQL", store, ps_zip, mss_zip, lists, args.runs)
        finally:
            store.dispose()
            drop_pg(args.pg, name)


if __name__ == "__main__":
    main()
