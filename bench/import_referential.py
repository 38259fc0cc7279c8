"""Benchmark: full national import and daily refresh of the referential.

    python bench/import_referential.py [--professionals 1950000] [--runs 3] [--pg URL]

Reports the median wall time and peak memory of `annuaire import` into a
fresh store (day 0), of the refresh day 0 -> day 1, and, as the floor, the
sqlite3 shell's `.import` of the same Personne_activite file into a bare table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NATIONAL, dataset, machine, median, timed


def annuaire(*args: str) -> list[str]:
    return [sys.executable, "-m", "annuaire", "--quiet", *args]


def fresh_pg(admin: str) -> tuple[str, str]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name, name


def drop_pg(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def floor_sqlite_import(day0: Path, work: Path) -> float:
    """The sqlite3 shell's .import of Personne_activite into a bare table."""
    with zipfile.ZipFile(next(day0.glob("PS_LibreAcces_*.zip"))) as z:
        member = next(n for n in z.namelist() if "Personne_activite" in n)
        z.extract(member, work)
    txt = work / member
    db = work / "floor.sqlite"
    db.unlink(missing_ok=True)
    wall, _ = timed(["sqlite3", str(db), "-cmd", ".mode list", "-cmd", ".separator |", ".import " + str(txt) + " t"])
    txt.unlink()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default="", help="admin URL of a PostgreSQL server to benchmark too")
    args = parser.parse_args()
    day0 = dataset(args.professionals, day=0)
    day1 = dataset(args.professionals, day=1)
    files0 = [str(p) for p in day0.glob("PS_LibreAcces_*.zip")]
    files1 = [str(p) for p in day1.glob("PS_LibreAcces_*.zip")]
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        floors = [floor_sqlite_import(day0, work) for _ in range(args.runs)]
        results: dict[str, list[tuple[float, float]]] = {"sqlite import": [], "sqlite refresh": []}
        for _ in range(args.runs):
            db = work / "bench.sqlite"
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            env = dict(os.environ, ANNUAIRE_DB=f"sqlite:///{db}")
            results["sqlite import"].append(timed(annuaire("import", "--no-render", *files0), env))
            results["sqlite refresh"].append(timed(annuaire("import", "--no-render", *files1), env))
        if args.pg:
            results["postgresql import"] = []
            results["postgresql refresh"] = []
            for _ in range(args.runs):
                url, name = fresh_pg(args.pg)
                try:
                    env = dict(os.environ, ANNUAIRE_DB=url)
                    results["postgresql import"].append(timed(annuaire("import", "--no-render", *files0), env))
                    results["postgresql refresh"].append(timed(annuaire("import", "--no-render", *files1), env))
                finally:
                    drop_pg(args.pg, name)
        floor = median(floors)
        print(f"floor: sqlite3 .import of Personne_activite: median {floor:.1f} s over {args.runs} runs")
        for name, values in results.items():
            wall = median([v[0] for v in values])
            peak = median([v[1] for v in values])
            extra = f", {wall / floor:.1f}x the floor" if name == "sqlite import" else ""
            print(f"{name}: median {wall:.1f} s, peak RSS {peak:.0f} MiB over {len(values)} runs{extra}"
                  f" (all: {', '.join(f'{v[0]:.1f}' for v in values)})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
