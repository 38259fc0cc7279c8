"""Helpers shared by the benchmark scripts: the national dataset, timing, medians."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
NATIONAL = 1_950_000


def dataset(professionals: int = NATIONAL, seed: int = 1, day: int = 0) -> Path:
    """The generated files of one day, generated once and cached under bench/out/."""
    folder = OUT / f"data-{professionals}-{seed}" / f"day{day}"
    if not any(folder.glob("PS_LibreAcces_*.zip")):
        print(f"generating {professionals:,} professionals, day {day} into {folder}", file=sys.stderr)
        from annuaire.synthetic import generate

        generate(folder, professionals=professionals, seed=seed, day=day)
    return folder


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MiB) using /usr/bin/time."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024


def median(values: list[float]) -> float:
    return statistics.median(values)
