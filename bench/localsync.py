"""Benchmark: integrating the national MSSanté extraction into a local address book.

    python bench/localsync.py [--professionals 1950000] [--runs 3]

Uses the generated extractions of day 0 and day 1 (bench/common.dataset).
Reports the median wall time and peak memory of `annuaire local-sync`:

- the whole extraction into an EMPTY local base (target <= 30 s);
- the next day's extraction into that base (target <= 5 s);
- the same file again (recognised by its SHA-256: nothing read) and with
  --force (every line compared by digest, nothing written);
- a typical establishment: two départements only, into an empty base;
- exporting the whole base as vCard.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NATIONAL, dataset, machine
from timing import Run, measured, summary


def annuaire(*args: str) -> list[str]:
    return [sys.executable, "-m", "annuaire", "--quiet", *args]


def fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def copy(src: Path, dst: Path) -> Path:
    fresh(dst)
    for suffix in ("", "-wal", "-shm"):
        if Path(str(src) + suffix).exists():
            shutil.copy(str(src) + suffix, str(dst) + suffix)
    os.sync()  # the copy's dirty pages must not be flushed inside the measured run
    return dst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--professionals", type=int, default=NATIONAL)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    day0 = next(dataset(args.professionals, day=0).glob("Extraction_Correspondance_MSSante_*.zip"))
    day1 = next(dataset(args.professionals, day=1).glob("Extraction_Correspondance_MSSante_*.zip"))
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-localsync-"))
    results: dict[str, list[Run]] = {}
    try:
        base0 = work / "day0.sqlite"
        for _ in range(args.runs):
            results.setdefault("whole extraction into an empty base", []).append(
                measured(annuaire("local-sync", "--source", str(day0), "--local", str(fresh(base0)))))
        for _ in range(args.runs):
            base1 = copy(base0, work / "day1.sqlite")
            results.setdefault("next day's extraction", []).append(
                measured(annuaire("local-sync", "--source", str(day1), "--local", str(base1))))
        for _ in range(args.runs):
            results.setdefault("same file again (SHA-256 unchanged)", []).append(
                measured(annuaire("local-sync", "--source", str(day1), "--local", str(base1))))
            results.setdefault("same file again with --force (all digests compared)", []).append(
                measured(annuaire("local-sync", "--source", str(day1), "--local", str(base1), "--force")))
        for _ in range(args.runs):
            results.setdefault("two départements (69, 75) into an empty base", []).append(
                measured(annuaire("local-sync", "--source", str(day0), "--local", str(fresh(work / "dept.sqlite")),
                               "--departement", "69", "--departement", "75")))
        for _ in range(args.runs):
            results.setdefault("export of the whole base as vCard", []).append(
                measured(annuaire("local-sync", "export", "--local", str(base1), "--format", "vcf",
                               "-o", str(work / "carnet.vcf"))))
        for name, values in results.items():
            print(summary(name, values))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
