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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_http(url: str, port: int, workers: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`annuaire serve` as deployed (HTTP only: no LDAP, no extraction scheduler)."""
    env = dict(os.environ if env is None else env, ANNUAIRE_EXTRACTIONS_TIME="off")
    return subprocess.Popen(
        [sys.executable, "-m", "annuaire", "--db", url, "serve", "--host", "127.0.0.1", "--http-port", str(port),
         "--http-workers", str(workers), "--ldap-port", "0"],
        env=env, stdout=subprocess.DEVNULL,
    )


def warm(url: str) -> None:
    """Read an SQLite store once, so that its pages are in the OS cache as on a server that
    has been serving. (These VMs drop file pages left unread for ~60 s: DAMON reclaim.)"""
    if not url.startswith("sqlite:///"):
        return
    path = Path(url[len("sqlite:///"):])
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass
    print(f"read {path.name} ({path.stat().st_size / 2**30:.1f} GiB) into the page cache in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children (the HTTP workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    """Wait until `url` answers (any status); fail if the server process died."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")
