"""Wall time, CPU time and peak memory of a command, for benchmarks on a shared machine.

The CPU time (user + system) of the measured process is reported beside the
wall time, with the load average: when other jobs share the cores, the wall
time grows with the load while the CPU time stays a fair measure of the work.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mib: float
    load: float  # 1-minute load average when the run ended


def measured(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", *cmd], env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    user, system, peak = proc.stderr.strip().splitlines()[-1].split()
    return Run(wall, float(user) + float(system), int(peak) / 1024, os.getloadavg()[0])


def summary(name: str, runs: list[Run]) -> str:
    wall = statistics.median(r.wall for r in runs)
    cpu = statistics.median(r.cpu for r in runs)
    peak = statistics.median(r.peak_mib for r in runs)
    load = statistics.median(r.load for r in runs)
    return (f"{name}: median wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {peak:.0f} MiB over {len(runs)} runs "
            f"(walls: {', '.join(f'{r.wall:.1f}' for r in runs)}; load average {load:.1f})")
