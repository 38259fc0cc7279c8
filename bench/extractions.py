"""Benchmark: writing the daily extractions from a national-scale store.

    python bench/extractions.py [--db URL] [--professionals 1950000] [--runs 3]

Without --db, the store is bench/out/extractions-<N>.sqlite, loaded once from
the generated files of day 0 (PS_LibreAcces + the MSSanté extraction) with
`annuaire import`. Reports the median wall time and peak memory of
`annuaire extract --only mssante` (target: <= 10 s for ~535,000 lines) and
`--only ps` (target: <= 60 s for ~2.2 million activity lines).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NATIONAL, OUT, dataset, machine, timed
from timing import measured, summary


def annuaire(*args: str) -> list[str]:
    return [sys.executable, "-m", "annuaire", "--quiet", *args]


def national_store(professionals: int) -> str:
    """An SQLite store holding day 0, imported once and cached."""
    db = OUT / f"extractions-{professionals}.sqlite"
    done = db.with_suffix(".done")
    if not done.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        day0 = dataset(professionals, day=0)
        files = [str(p) for p in sorted(day0.glob("*.zip"))]
        print(f"importing {', '.join(Path(f).name for f in files)} into {db}", file=sys.stderr)
        wall, _ = timed(annuaire("--db", f"sqlite:///{db}", "import", "--no-render", *files))
        print(f"  imported in {wall:.0f} s", file=sys.stderr)
        done.write_text("ok\n")
    return f"sqlite:///{db}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="", help="an already loaded store (default: build one from day 0)")
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = args.db or national_store(args.professionals)
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        for only, label in (("mssante", "Extraction_Correspondance_MSSante"), ("ps", "PS_LibreAcces")):
            runs = []
            for _ in range(args.runs):
                out = work / only
                shutil.rmtree(out, ignore_errors=True)
                runs.append(measured(annuaire("--db", url, "extract", str(out), "--only", only), dict(os.environ)))
            manifest = json.loads(next(out.glob("*.json")).read_text())
            lines = ", ".join(f"{f['name'].rsplit('_', 1)[0]}: {f['lines']:,}" for f in manifest["files"])
            print(f"{summary(label, runs)}; {lines} lines; zip {manifest['zip']['bytes'] / 1e6:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
