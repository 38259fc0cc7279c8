"""Helpers shared by the benchmark scripts: the national dataset, timing, medians."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of a process and its descendants (shared pages counted once)."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak memory in MiB of the command and its worker processes).

    Memory is sampled every 0.2 s as the sum of the proportional set sizes of
    the process tree (the importer parses big files in worker processes).
    """
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_pss_kib(proc.pid))
            time.sleep(0.2)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{errors.read()[-3000:]}")
    return wall, peak / 1024


def median(values: list[float]) -> float:
    return statistics.median(values)
