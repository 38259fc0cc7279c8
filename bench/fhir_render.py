"""Benchmark: the full render of the FHIR cache at national scale, into an empty cache.

    .venv/bin/python bench/fhir_render.py [--runs 3] [--pg-runs 1] [--baseline REV] [--baseline-runs 1]
                                          [--professionals 1950000] [--pg ADMIN_URL] [--keep-pg] [--no-write]

1. the national synthetic dataset (bench/common.py) imported once without
   rendering (`annuaire import --no-render`) into an SQLite store cached under
   bench/out/fhir-render/, and into a PostgreSQL database of its own (dropped
   at the end unless --keep-pg);
2. each run renders the whole cache with `annuaire fhir render --full` in a
   process of its own, into an empty cache: the SQLite store copied afresh
   from the one just imported, the PostgreSQL fhir tables truncated (their
   identities restarted); wall time, CPU of the process and its helper,
   peak RSS and the load average are recorded (bench/timing.py);
3. the code measured is a copy of the package made at the start
   (bench/out/fhir-render/code-current); `--baseline REV` also runs a copy
   whose renderer (fhir/cache.py, fhir/render.py) is that of a git revision
   (code-REV), alternating with the current code, and checks that both
   leave exactly the same rows
   (a hash of every fhir_resource, fhir_token, fhir_telecom and
   fhir_legal_entity row);
4. medians are printed and written to docs/benchmarks.md, section
   "FHIR full render" (appended at the end, or replaced).

The machine is shared: the CPU time and the load average tell how much of a
wall time was waiting for a core.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import NATIONAL, OUT, dataset, machine, median  # noqa: E402 (after the sys.path setup)
from timing import Run, measured  # noqa: E402

WORK = OUT / "fhir-render"
PG_ADMIN = os.environ.get("ANNUAIRE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECTION = "## FHIR full render"
BEGIN, END = "<!-- bench/fhir_render.py: begin -->", "<!-- bench/fhir_render.py: end -->"
FHIR_TABLES = ("fhir_resource", "fhir_token", "fhir_telecom", "fhir_legal_entity", "fhir_history", "fhir_dictionary")
ROWS = {  # every row of the cache, in one order
    "fhir_resource": "SELECT kind, rid, active, version, last_updated, digest, json FROM fhir_resource ORDER BY kind, rid",
    "fhir_token": "SELECT kind, param, code, system, rid FROM fhir_token ORDER BY kind, param, code, system, rid",
    "fhir_telecom": "SELECT mailbox_id, kind, rid, address, domain, type FROM fhir_telecom ORDER BY mailbox_id, kind, rid",
    "fhir_legal_entity": "SELECT id, finess FROM fhir_legal_entity ORDER BY id",
}


def annuaire(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "annuaire", "--quiet", "--db", url, *args]


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def import_national(url: str, folder: Path, cwd: Path = ROOT) -> None:
    files = [str(p) for p in sorted(folder.glob("*.zip"))]
    print(f"importing {folder} into {url} (no render)", file=sys.stderr)
    done = subprocess.run(annuaire(url, "import", "--no-render", *files), cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the import failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")


def sqlite_store(folder: Path, professionals: int) -> Path:
    """The store imported without rendering, made once."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"national-{professionals}.sqlite"
    if not path.exists():
        partial = path.with_suffix(".partial")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        import_national(f"sqlite:///{partial}", folder)
        with sqlite3.connect(partial) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        partial.rename(path)
    # (a store imported by an earlier version: brought to this one's schema, as an operator would)
    subprocess.run(annuaire(f"sqlite:///{path}", "db", "upgrade"), check=True, capture_output=True)
    return path


def pg_store(admin: str, folder: Path, professionals: int) -> tuple[str, str]:
    import psycopg

    name = f"bench_render_{professionals}"
    url = admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(libpq(url)) as conn:
        imported = conn.execute("SELECT to_regclass('person') IS NOT NULL").fetchone()[0] and \
            conn.execute("SELECT EXISTS (SELECT 1 FROM person)").fetchone()[0]
    if not imported:
        import_national(url, folder)
    return url, name


def drop_pg(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_sqlite(pristine: Path) -> str:
    work = WORK / "work.sqlite"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    return f"sqlite:///{work}"


def empty_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(FHIR_TABLES) + " RESTART IDENTITY")
        conn.execute("UPDATE fhir_sync SET journal_id = 0, holes = '', lease_until = 0")
        conn.execute("VACUUM ANALYZE " + ", ".join(FHIR_TABLES))
        conn.execute("CHECKPOINT")


def rows_hash(url: str) -> str:
    """A hash of every row of the cache (SQLite or PostgreSQL), values as text, bodies
    decompressed (each rendering trains its own dictionary: the stored bytes differ)."""
    h = hashlib.sha256()
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.split(":///", 1)[1])
        unpack = _unpacker(db.execute("SELECT id, data FROM fhir_dictionary").fetchall())
        for table, sql in ROWS.items():
            for row in db.execute(sql):
                h.update(repr(tuple(unpack(v) if isinstance(v, (bytes, memoryview)) else v for v in row)).encode())
            h.update(table.encode())
        db.close()
        return h.hexdigest()
    import psycopg

    with psycopg.connect(libpq(url)) as conn:
        unpack = _unpacker(conn.execute("SELECT id, data FROM fhir_dictionary").fetchall())
        with conn.cursor(name="rows") as cur:
            for table, sql in ROWS.items():
                cur.execute(sql)
                for row in cur:
                    h.update(repr(tuple(unpack(v) if isinstance(v, (bytes, memoryview)) else
                                        (int(v) if isinstance(v, bool) else v) for v in row)).encode())
                h.update(table.encode())
    return h.hexdigest()


def _unpacker(dictionaries: list[tuple[int, bytes]]):
    """Stored body -> JSON (annuaire.fhir.packing's format, without a store connection)."""
    import zstandard

    contexts = {int(i): zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(bytes(d)))
                for i, d in dictionaries}
    contexts[0] = zstandard.ZstdDecompressor()

    def unpack(value: bytes | memoryview) -> bytes:
        blob = bytes(value)
        if blob[:1] == b"{":
            return blob
        return contexts[zstandard.get_frame_parameters(blob).dict_id].decompress(blob)

    return unpack


def store_bytes(url: str) -> dict[str, int]:
    """SQLite: the file's size and what the FHIR cache takes in it (tables and their indexes)."""
    path = url.split(":///", 1)[1]
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fhir = db.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name LIKE 'fhir%')"
        ).fetchone()[0]
    finally:
        db.close()
    return {"file": Path(path).stat().st_size, "fhir": int(fhir or 0)}


def frozen_code(rev: str = "") -> Path:
    """A copy of the package as it is now, run by the measurements (so that the working tree may
    change meanwhile); with `rev`, the renderer (fhir/cache.py, fhir/render.py) of that git
    revision in it: the rest (migrations…) must open the same store."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip() if rev else "current"
    folder = WORK / f"code-{sha}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ROOT / "annuaire", folder / "annuaire", ignore=shutil.ignore_patterns("__pycache__"))
    if rev:
        for name in ("cache.py", "render.py"):
            text = subprocess.run(["git", "show", f"{sha}:annuaire/fhir/{name}"], cwd=ROOT, check=True,
                                  capture_output=True).stdout
            (folder / "annuaire" / "fhir" / name).write_bytes(text)
        (folder / "annuaire" / "fhir" / "fullpass.py").unlink(missing_ok=True)
    return folder


def render(url: str, code: Path) -> Run:
    return _measured_in(code, annuaire(url, "fhir", "render", "--full"), dict(os.environ, PYTHONPATH=str(code)))


def _measured_in(cwd: Path, cmd: list[str], env: dict[str, str]) -> Run:
    here = os.getcwd()
    os.chdir(cwd)
    try:
        return measured(cmd, env)
    finally:
        os.chdir(here)


def counts(url: str) -> dict[str, int]:
    sql = {
        "persons": "SELECT count(*) FROM person", "activities": "SELECT count(*) FROM activity",
        "structures": "SELECT count(*) FROM structure", "mailboxes": "SELECT count(*) FROM mailbox",
        "resources": "SELECT count(*) FROM fhir_resource", "tokens": "SELECT count(*) FROM fhir_token",
    }
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.split(":///", 1)[1])
        out = {k: db.execute(q).fetchone()[0] for k, q in sql.items()}
        db.close()
        return out
    import psycopg

    with psycopg.connect(libpq(url)) as conn:
        return {k: conn.execute(q).fetchone()[0] for k, q in sql.items()}


def line(label: str, runs: list[Run]) -> str:
    walls = ", ".join(f"{r.wall:.0f}" for r in runs)
    loads = ", ".join(f"{r.load:.1f}" for r in runs)
    return (f"| {label} | {len(runs)} | **{median([r.wall for r in runs]):.0f}** | {walls} | "
            f"{median([r.cpu for r in runs]):.0f} | {median([r.peak_mib for r in runs]):.0f} | {loads} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--runs", type=int, default=3, help="runs of the current code on SQLite")
    parser.add_argument("--pg-runs", type=int, default=1, help="runs on PostgreSQL (0: none)")
    parser.add_argument("--pg", default=PG_ADMIN, help="admin URL of the PostgreSQL server")
    parser.add_argument("--keep-pg", action="store_true", help="keep the PostgreSQL database for the next time")
    parser.add_argument("--baseline", default="", help="git revision of the code to compare with (e.g. HEAD)")
    parser.add_argument("--baseline-runs", type=int, default=1, help="runs of the baseline per engine")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    folder = dataset(args.professionals)
    current = frozen_code()
    code = frozen_code(args.baseline) if args.baseline else None
    pristine = sqlite_store(folder, args.professionals)
    results: dict[tuple[str, str], list[Run]] = {}
    hashes: dict[tuple[str, str], set[str]] = {}
    size: dict[str, int] = {}
    stored: dict[str, dict[str, int]] = {}

    def run(engine: str, version: str, url: str) -> None:
        r = render(url, code if version == "before" else current)  # type: ignore[arg-type]
        print(f"{engine} {version}: {r.wall:.1f} s wall, {r.cpu:.1f} s CPU, {r.peak_mib:.0f} MiB, load {r.load:.1f}",
              file=sys.stderr)
        results.setdefault((engine, version), []).append(r)
        if (engine, version) not in hashes:  # (once per engine and code: minutes at national scale)
            hashes[(engine, version)] = {rows_hash(url)}
            size.update(counts(url))
            if engine == "sqlite":
                stored[version] = store_bytes(url)

    # SQLite: the baseline and the current code alternate, so that both see the same load.
    plan = [("after", i) for i in range(args.runs)]
    if code is not None:
        plan = [p for i in range(max(args.runs, args.baseline_runs))
                for p in ((("before", i),) if i < args.baseline_runs else ()) + ((("after", i),) if i < args.runs else ())]
    for version, _ in plan:
        run("sqlite", version, empty_sqlite(pristine))
    Path(WORK / "work.sqlite").unlink(missing_ok=True)

    pg_name = ""
    if args.pg_runs:
        url, pg_name = pg_store(args.pg, folder, args.professionals)
        try:
            pg_plan = ["after"] * args.pg_runs
            if code is not None:
                pg_plan = ["before"] * min(args.baseline_runs, 1) + pg_plan
            for version in pg_plan:
                empty_pg(url)
                run("postgresql", version, url)
        finally:
            if not args.keep_pg:
                drop_pg(args.pg, pg_name)

    for engine in ("sqlite", "postgresql"):
        if (engine, "before") in hashes and (engine, "after") in hashes:
            same = hashes[(engine, "before")] == hashes[(engine, "after")]
            print(f"{engine}: the rows rendered by the baseline and the current code are "
                  f"{'identical' if same else 'DIFFERENT'}", file=sys.stderr)
            if not same:
                raise SystemExit(1)

    text = "\n".join([
        SECTION, "",
        f"`bench/fhir_render.py`: `annuaire fhir render --full` into an empty cache, each run in a new process; "
        f"{machine()}.",
        f"Dataset: {size.get('persons', 0):,} persons, {size.get('activities', 0):,} activities, "
        f"{size.get('structures', 0):,} structures, {size.get('mailboxes', 0):,} mailboxes; "
        f"{size.get('resources', 0):,} resources and {size.get('tokens', 0):,} tokens rendered.",
        *(f"Store with the cache rendered ({version}): {b['file'] / 2**30:.2f} GiB, "
          f"{b['file'] / max(size.get('persons', 1), 1) / 1000:.2f} KB per professional "
          f"(FHIR cache {b['fhir'] / 2**30:.2f} GiB)." for version, b in stored.items()), "",
        "| engine, code | runs | median wall s | walls s | CPU s (median, with the helper) | peak RSS MiB | "
        "load average at the end |",
        "|---|---|---|---|---|---|---|",
        *(line(f"{engine}, {'before' if version == 'before' else 'after'}"
               + (f" ({args.baseline})" if version == "before" else ""), runs)
          for (engine, version), runs in sorted(results.items(), key=lambda kv: (kv[0][0] != "sqlite", kv[0][1] != "before"))),
        "",
    ])
    print(text)
    if not args.no_write:
        write_section(text)


def write_section(text: str) -> None:
    """The measurements into docs/benchmarks.md: between the markers of the section if it has
    them (the prose around them is kept), else as a new section at the end."""
    path = ROOT / "docs" / "benchmarks.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    body = text.split("\n", 2)[2]  # (without the section's title)
    start, end = old.find(BEGIN), old.find(END)
    if start >= 0 and end > start:
        path.write_text(old[: start + len(BEGIN)] + "\n" + body.rstrip("\n") + "\n" + old[end:])
        return
    path.write_text(old.rstrip("\n") + "\n\n" + SECTION + "\n\n" + BEGIN + "\n" + body.rstrip("\n") + "\n" + END + "\n")


if __name__ == "__main__":
    main()
