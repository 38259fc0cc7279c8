"""Benchmark: does the web search find what people ask for, at national scale, and how fast?

    python bench/web_relevance.py [--db URL] [--professionals 1950000] [--per-form 300]
                                  [--concurrency 4] [--workers 2] [--seed 7] [--json FILE]
                                  [--in-process]

Serves the real app (`annuaire serve --http-workers N`) over a store holding the
national dataset (imported once into bench/out/, as bench/web_load.py does), draws
professionals, structures and organisational boxes from the store itself, and asks
for each of them the way people do:

- name: "Prénom Nom" (the target professional among the first 10 people);
- name + city: "Nom Ville" of their first place (lowest activity id: the same question whatever the plan);
- identifiers: RPPS (11 digits), national id (12), ADELI (9), each also typed with
  spaces; FINESS of a site and of its legal entity, SIRET, SIREN (the target
  opened directly, or among the records listed);
- structure words: the words of its name, articles and legal forms left out, with
  its city when the name does not hold it ("grande pharmacie jalmont");
- service: an organisational box's service and its structure's city ("cardiologie
  jalmont": the box shown on the results page);
- the same (but identifiers) with one letter wrong in one word (deleted, doubled,
  replaced by a neighbour on the keyboard, or two letters swapped).

Recall@10: the target is among the first 10 results of its kind on the page the
server answers (a correction it applied by itself counts; a suggestion to click does
not). Homonyms the query cannot tell apart count as found: when the first 10 all
bear the target's exact name (and city, when asked), any of them is an answer; for
a service, when the structures listed (10, or the 5 shown beside people) are all of the
city and publish a box of that service, and more do ("officine norel": every pharmacy
of Norel has one), or are of the city and named exactly by the words ("centre dentaire
jalin": the CENTRE DENTAIRE DE JALIN of Jalin).

`--in-process` asks the app in the benchmark's own process, one question at a time
(no server, no socket), and prints each form's CPU time beside its latency: for
comparing two versions of the code on a shared machine. The p95 target is the
served one's.

Smaller stores for iterating (the national one is for the final figures):
`--professionals 60000` generates and imports one in a few seconds.
Targets: recall >= 99 % for exact forms, >= 90 % with a typo; p95 <= 150 ms with
four concurrent clients.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NATIONAL, free_port, machine, serve_http, wait_http, warm
from web_load import national_store, pct

STOP = {"de", "du", "des", "la", "le", "les", "l", "d", "et", "a", "au", "aux", "en", "sur", "sous"}
LEGAL = {"sa", "sas", "sasu", "sarl", "eurl", "selarl", "selas", "selafa", "selca", "sel", "scm", "scp", "sci", "snc", "gie"}
KEYBOARD = {
    "a": "zqs", "z": "aes", "e": "zrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij", "i": "uok", "o": "ipl",
    "p": "om", "q": "asw", "s": "qdz", "d": "sfe", "f": "dgr", "g": "fht", "h": "gjy", "j": "hku", "k": "jli",
    "l": "kmo", "m": "lp", "w": "xq", "x": "wc", "c": "xv", "v": "cb", "b": "vn", "n": "bm",
}
RESULT = re.compile(r'<h[34]><a href="/(pro|structure)/([^"?]+)">')


@dataclass
class Ask:
    form: str  # "name", "name + city", …
    typo: bool
    query: str
    kind: str  # "pro" | "structure"
    targets: set[str]  # acceptable ids (a legal entity's sites, …)
    same: str = ""  # what an indistinguishable homonym shares with the target (compared on the page)
    box: str = ""  # for the service form: the address that must be shown
    rivals: frozenset[str] = frozenset()  # service form: the structures of the city with such a box
    latency: float = 0.0
    cpu: float = 0.0  # --in-process only: the process's CPU seconds for this request
    found: bool = False
    status: int = 0


@dataclass
class Sample:
    people: list = field(default_factory=list)
    structures: list = field(default_factory=list)
    boxes: list = field(default_factory=list)


def plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def key(text: str) -> str:
    from annuaire.store.keys import search_key

    return search_key(text)


def typo(rng: random.Random, query: str) -> str:
    """One letter wrong in one word of 5 letters or more (not a digit)."""
    words = query.split()
    choices = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not choices:
        return ""
    i = rng.choice(choices)
    w = words[i]
    for _ in range(20):
        p = rng.randrange(1, len(w) - 1)  # (the first and last letters are seldom the wrong ones)
        kind = rng.choice(("delete", "double", "neighbour", "swap"))
        if kind == "delete":
            new = w[:p] + w[p + 1 :]
        elif kind == "double":
            new = w[:p] + w[p] + w[p:]
        elif kind == "neighbour":
            near = KEYBOARD.get(plain(w[p]).lower(), "")
            if not near:
                continue
            new = w[:p] + rng.choice(near) + w[p + 1 :]
        else:
            new = w[:p] + w[p + 1] + w[p] + w[p + 2 :]
        if new.lower() != w.lower():
            words[i] = new
            return " ".join(words)
    return ""


def draw(url: str, n: int, seed: int) -> Sample:
    """Professionals, structures and ORG boxes drawn at random from the store (public ones only)."""
    from sqlalchemy import text

    from annuaire.store import open_store

    rng = random.Random(seed)
    store = open_store(url, upgrade=False)  # (the national store is read-only here: never migrated)
    out = Sample()
    with store.read() as conn:
        def sample(sql: str, table: str, k: int) -> list:
            top = conn.execute(text(f"SELECT max(id) FROM {table}")).scalar() or 0
            rows: list = []
            while len(rows) < k and top:
                ids = ",".join(str(rng.randint(1, top)) for _ in range(k * 2))
                rows += conn.execute(text(sql.replace("IDS", ids))).all()
            rng.shuffle(rows)
            return rows[:k]

        out.people = sample(
            # the city of the person's first place (lowest activity id): the same question whatever the plan
            "SELECT p.id_nat, p.id_type, p.id_pp, p.first_name, p.last_name, s.commune_label "
            "FROM person p JOIN activity a ON a.id = (SELECT min(a2.id) FROM activity a2 "
            "JOIN structure s2 ON s2.id = a2.structure_id AND s2.active AND s2.commune_label <> '' "
            "WHERE a2.person_id = p.id AND a2.active) "
            "JOIN structure s ON s.id = a.structure_id "
            "WHERE p.active AND p.first_name <> '' AND p.last_name <> '' AND p.id IN (IDS)", "person", n)
        out.structures = sample(
            "SELECT tech_id, name, commune_label, finess, finess_ej, siret, siren, idnat, name_key, city_key "
            "FROM structure WHERE active AND name <> '' AND commune_label <> '' AND id IN (IDS)", "structure", n)
        out.boxes = sample(
            "SELECT m.address, m.service, s.tech_id, s.commune_label, s.name_key, s.city_key, m.structure_idnat "
            "FROM mailbox m "
            "JOIN structure s ON s.active AND (s.idnat = m.structure_idnat OR "
            "(substr(m.structure_idnat, 1, 1) = '1' AND s.finess_ej = substr(m.structure_idnat, 2))) "
            "WHERE m.type = 'ORG' AND m.active AND NOT m.liste_rouge AND m.service <> '' AND m.id IN (IDS)",
            "mailbox", n)
        ej_sites: dict[str, set[str]] = {}
        siren_sites: dict[str, set[str]] = {}
        for s in out.structures:
            if s.finess_ej and s.finess_ej not in ej_sites:
                ej_sites[s.finess_ej] = {r[0] for r in conn.execute(
                    text("SELECT tech_id FROM structure WHERE active AND finess_ej = :ej"), {"ej": s.finess_ej})}
            if s.siren and s.siren not in siren_sites:
                siren_sites[s.siren] = {r[0] for r in conn.execute(
                    text("SELECT tech_id FROM structure WHERE active AND siret >= :a AND siret < :b"),
                    {"a": s.siren, "b": s.siren + ":"})}
        showing: dict[str, set[str]] = {}  # the sites whose page shows a box (its site, or its EJ's sites)
        for b in out.boxes:
            owner = b[6]
            if owner not in showing:
                showing[owner] = {r[0] for r in conn.execute(text(
                    "SELECT tech_id FROM structure WHERE active AND (idnat = :o OR "
                    "(substr(:o, 1, 1) = '1' AND finess_ej = substr(:o, 2)))"), {"o": owner})}
        out.city_boxes = {b[5]: city_boxes(conn, b[5]) for b in out.boxes}  # type: ignore[attr-defined]
        out.ej_sites, out.siren_sites, out.showing = ej_sites, siren_sites, showing  # type: ignore[attr-defined]
    store.dispose()
    return out


def city_boxes(conn, city_key: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(tech_id, the words a box is found by) of the published ORG/APP boxes shown by the structures
    of a city (their own boxes and their legal entity's)."""
    from sqlalchemy import text

    from annuaire.web.words import box_words

    out = []
    for join in ("m.structure_idnat = s.idnat", "m.structure_idnat = '1' || s.finess_ej"):
        out += [(r[0], box_words(r[1], r[2], r[3])) for r in conn.execute(text(
            "SELECT s.tech_id, m.address, m.service, m.description FROM structure s JOIN mailbox m ON " + join +
            " WHERE s.city_key = :c AND s.active AND m.active AND NOT m.liste_rouge AND m.type IN ('ORG', 'APP')"),
            {"c": city_key})]
    return out


def rivals(boxes: list[tuple[str, str]], words: list[str]) -> frozenset[str]:
    """The structures publishing a box that holds every service word (as the beginning of a word)."""
    return frozenset(t for t, found in boxes if all(re.search(r"(?:^| )" + re.escape(w), found) for w in words))


def spaced(number: str, groups: int = 3) -> str:
    return " ".join(number[i : i + groups] for i in range(0, len(number), groups))


def asks(sample: Sample, seed: int) -> list[Ask]:
    rng = random.Random(seed)
    out: list[Ask] = []

    def both(form: str, query: str, kind: str, targets: set[str], same: str = "", box: str = "",
             others: frozenset[str] = frozenset()) -> None:
        out.append(Ask(form, False, query, kind, targets, same, box, others))
        wrong = typo(rng, query)
        if wrong:
            out.append(Ask(form, True, wrong, kind, targets, same, box, others))

    for id_nat, id_type, id_pp, first, last, city in sample.people:
        both("name", f"{first} {last}", "pro", {id_nat}, same=key(f"{first} {last}"))
        both("name + city", f"{last} {city}", "pro", {id_nat}, same=key(last))
        forms = [("national id", id_nat), ("national id", spaced(id_nat))]
        forms.append(("RPPS", id_pp) if id_type == "8" else ("ADELI", id_pp))
        form, number = rng.choice(forms)
        out.append(Ask(f"identifier ({form})", False, number, "pro", {id_nat}))
    for s in sample.structures:
        words = [w for w in s.name_key.split() if w not in STOP and w not in LEGAL]
        if not words:
            continue
        query = " ".join(words)
        if s.city_key and s.city_key not in s.name_key:
            query += " " + s.city_key
        both("structure words", query, "structure", {s.tech_id}, same=f"{s.name_key}|{s.city_key}")
        ids = [("SIRET", s.siret, {s.tech_id}), ("FINESS", s.finess, {s.tech_id}),
               ("FINESS EJ", s.finess_ej, sample.ej_sites.get(s.finess_ej, set())),  # type: ignore[attr-defined]
               ("SIREN", s.siren, sample.siren_sites.get(s.siren, set()))]  # type: ignore[attr-defined]
        ids = [i for i in ids if i[1] and i[2]]
        if ids:
            form, number, targets = rng.choice(ids)
            out.append(Ask(f"identifier ({form})", False, number if rng.random() < 0.5 else spaced(number), "structure",
                           targets))
    for address, service, tech_id, _city, _name_key, city_key, owner in sample.boxes:
        words = [w for w in key(service).split() if w not in STOP][:2]
        sites = sample.showing.get(owner) or {tech_id}  # type: ignore[attr-defined]
        query = " ".join(words) + " " + city_key
        both("service", query, "structure", sites, same=f"{significant(query)}|{city_key}", box=address,
             others=rivals(sample.city_boxes[city_key], words))  # type: ignore[attr-defined]
    return out


def judge(ask: Ask, status: int, location: str, html: str) -> bool:
    if status in (302, 303):
        kind, _, ident = location.lstrip("/").partition("/")
        return ident in ask.targets and ((kind == "pro") == (ask.kind == "pro"))
    if status != 200:
        return False
    shown = [ident for kind, ident in RESULT.findall(html) if (kind == "pro") == (ask.kind == "pro")]
    first = shown[:10]
    if ask.box:
        # the box's structure among the first 10, and the box listed on the page; or, when more
        # structures of the city publish such a box than the page lists ("officine norel"; beside
        # people, 5 and a link to all), only such structures listed; structures of the city that
        # the words name exactly ("centre dentaire jalin": CENTRE DENTAIRE DE JALIN, of Jalin) are
        # homonyms the query cannot tell apart from the box's structure
        fitting = ask.rivals | _named_exactly(html, ask.same)
        if len(first) >= 5 and set(first) <= fitting and len(fitting) > len(first):
            return True
        return bool(ask.targets & set(first)) and ask.box in html
    if ask.targets & set(first):
        return True
    # homonyms the query cannot separate: the first 10 all bear the target's name
    return bool(ask.same) and len(first) == 10 and _all_same(html, ask)


_NAMES = re.compile(r'<h3><a href="/pro/[^"]+">(?:Dr |Pr )?([^<]+)</a></h3>')
_STRUCTS = re.compile(r'<h3><a href="/structure/[^"]+">([^<]+)</a></h3>\s*(?:<p class="meta">\S+ ([^<]+)</p>)?')


_STRUCT_IDS = re.compile(r'<h[34]><a href="/structure/([^"?]+)">([^<]+)</a></h[34]>\s*(?:<p class="meta">\S+ ([^<]+)</p>)?')


def significant(text: str) -> str:
    """The words of a name that tell it apart: articles and legal forms left out."""
    return " ".join(w for w in key(text).split() if w not in STOP and w not in LEGAL)


def _named_exactly(html: str, same: str) -> set[str]:
    """The structures listed whose name is the words `same` holds and whose city is its city."""
    import html as h

    words, _, city = same.partition("|")
    return {i for i, n, c in _STRUCT_IDS.findall(html)
            if significant(h.unescape(n)) == words and key(h.unescape(c or "")) == city}


def _all_same(html: str, ask: Ask) -> bool:
    import html as h

    if ask.kind == "pro":
        names = [key(h.unescape(n)) for n in _NAMES.findall(html)[:10]]
        wanted = ask.same.split()
        return all(all(w in n.split() for w in wanted) for n in names)
    pairs = [(key(h.unescape(n)), key(h.unescape(c))) for n, c in _STRUCTS.findall(html)[:10]]
    name, city = ask.same.split("|")
    return all(n == name and c == city for n, c in pairs)


def run(base: str, todo: list[Ask], concurrency: int) -> float:
    lock = threading.Lock()
    queue = iter(todo)

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
            while True:
                with lock:
                    ask = next(queue, None)
                if ask is None:
                    return
                start = time.perf_counter()
                response = client.get("/?" + urlencode({"q": ask.query}))
                ask.latency = time.perf_counter() - start
                ask.status = response.status_code
                ask.found = judge(ask, response.status_code, response.headers.get("location", ""), response.text)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def run_in_process(url: str, todo: list[Ask]) -> float:
    """The questions asked one at a time of the app in this process (no server, no HTTP socket:
    less sensitive to a shared machine), with each answer's CPU time."""
    from starlette.testclient import TestClient

    from annuaire.config import Settings
    from annuaire.http.app import create_app
    from annuaire.store import open_store

    client = TestClient(create_app(open_store(url, upgrade=False), Settings()), follow_redirects=False)
    start = time.perf_counter()
    for ask in todo:
        began, cpu = time.perf_counter(), time.process_time()
        response = client.get("/?" + urlencode({"q": ask.query}))
        ask.latency, ask.cpu = time.perf_counter() - began, time.process_time() - cpu
        ask.status = response.status_code
        ask.found = judge(ask, response.status_code, response.headers.get("location", ""), response.text)
    return time.perf_counter() - start


def report(todo: list[Ask], wall: float, concurrency: int, workers: int) -> dict:
    by: dict[tuple[str, bool], list[Ask]] = defaultdict(list)
    for a in todo:
        by[(a.form, a.typo)].append(a)
    lat = [a.latency for a in todo]
    exact = [a for a in todo if not a.typo]
    typos = [a for a in todo if a.typo]
    summary: dict[str, Any] = {
        "requests": len(todo), "wall_s": round(wall, 1), "rps": round(len(todo) / wall, 1),
        "p50_ms": round(pct(lat, 50)), "p95_ms": round(pct(lat, 95)), "p99_ms": round(pct(lat, 99)),
        "recall_exact": round(100 * sum(a.found for a in exact) / max(1, len(exact)), 2),
        "recall_typo": round(100 * sum(a.found for a in typos) / max(1, len(typos)), 2),
        "errors": sum(a.status not in (200, 303) for a in todo),
        "load_average": os.getloadavg()[0],
    }
    forms: dict[str, dict[str, float]] = {}
    summary["forms"] = forms
    cpu = [a.cpu for a in todo]
    if any(cpu):
        summary.update(cpu_p50_ms=round(pct(cpu, 50)), cpu_p95_ms=round(pct(cpu, 95)))
    title = "in process, one client" if workers == 0 else f"{concurrency} concurrent clients, {workers} server processes"
    print(f"\n### {title}\n")
    print(f"{len(todo)} requests in {wall:.1f} s ({summary['rps']} requests/s); p50 {summary['p50_ms']} ms, "
          f"**p95 {summary['p95_ms']} ms**, p99 {summary['p99_ms']} ms; errors {summary['errors']}; "
          f"load average {summary['load_average']:.1f}")
    if any(cpu):
        print(f"CPU per request: p50 {summary['cpu_p50_ms']} ms, p95 {summary['cpu_p95_ms']} ms")
    print(f"recall@10: exact forms **{summary['recall_exact']} %**, one typo **{summary['recall_typo']} %**\n")
    print("| way of asking | typo | asked | recall@10 | p50 ms | p95 ms |" + (" CPU p50 ms | CPU p95 ms |" if any(cpu) else ""))
    print("|---|---|---:|---:|---:|---:|" + ("---:|---:|" if any(cpu) else ""))
    for (form, wrong), items in sorted(by.items()):
        found = 100 * sum(a.found for a in items) / len(items)
        values = [a.latency for a in items]
        figures = forms[f"{form}{' (typo)' if wrong else ''}"] = {
            "asked": len(items), "recall": round(found, 2), "p50_ms": round(pct(values, 50)),
            "p95_ms": round(pct(values, 95))}
        line = (f"| {form} | {'yes' if wrong else ''} | {len(items)} | {found:.1f} % | {pct(values, 50):.0f} | "
                f"{pct(values, 95):.0f} |")
        if any(cpu):
            spent = [a.cpu for a in items]
            figures.update(cpu_p50_ms=round(pct(spent, 50)), cpu_p95_ms=round(pct(spent, 95)))
            line += f" {pct(spent, 50):.0f} | {pct(spent, 95):.0f} |"
        print(line)
    return summary


def served(url: str, todo: list[Ask], warmup: list[Ask], concurrency: int, workers: int) -> float:
    """The questions asked over HTTP of `annuaire serve`, by `concurrency` clients."""
    port = free_port()
    proc = serve_http(url, port, workers)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/aide", proc)
        run(base, warmup, concurrency)
        return run(base, todo, concurrency)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="", help="store URL (default: the national dataset under bench/out/)")
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--per-form", type=int, default=300, help="professionals, structures and boxes drawn")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", default="", help="write the figures (and the misses) to this file")
    parser.add_argument("--misses", type=int, default=15, help="misses printed per way of asking")
    parser.add_argument("--in-process", action="store_true",
                        help="ask the app in this process, one question at a time (latency and CPU per form)")
    args = parser.parse_args()
    url = args.db or national_store(args.professionals)
    print(machine())
    print(f"store: {url.split('@')[-1]}; load average before: {os.getloadavg()[0]:.1f}")
    sample = draw(url, args.per_form, args.seed)
    todo = asks(sample, args.seed)
    random.Random(args.seed).shuffle(todo)
    warm(url)
    warmup = [Ask(a.form, a.typo, a.query, a.kind, a.targets, a.same, a.box, a.rivals) for a in todo[:200]]
    if args.in_process:
        run_in_process(url, warmup)
        wall = run_in_process(url, todo)
        summary = report(todo, wall, 1, 0)
    else:
        wall = served(url, todo, warmup, args.concurrency, args.workers)
        summary = report(todo, wall, args.concurrency, args.workers)
    misses: dict[str, list[str]] = defaultdict(list)
    for a in todo:
        if not a.found:
            misses[f"{a.form}{' (typo)' if a.typo else ''}"].append(a.query)
    for form, queries in sorted(misses.items()):
        print(f"\nmissed, {form} ({len(queries)}): " + "; ".join(queries[: args.misses]))
    if args.json:
        Path(args.json).write_text(json.dumps({**summary, "misses": misses}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
