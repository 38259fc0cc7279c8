"""How current each LDAP worker's index is, as the HTTP side can see it (`/readyz`, `/metrics`).

Each LDAP worker holds its index in its own memory and follows the journal
itself (annuaire.ldap.backend.Refresher); the HTTP workers cannot ask it. So
each time a worker's refresher has applied what it read (every
`ANNUAIRE_LDAP_REFRESH` seconds while it keeps up, also when nothing
changed), the worker writes `ldap-worker-<n>.json` in the server's run
directory: its pid, the journal position its index reflects, and when
(CLOCK_MONOTONIC, one clock for every process of the machine). The
supervisor writes `ldap.json` first: how many workers to expect, and the
refresh interval.

A worker is *behind* when it has not confirmed its index current for longer
than its bound: `STALE_AFTER` plus one refresh interval (the same 5 s as the
FHIR cache, docs/architecture.md "How fresh each view is"). That covers a
worker rebuilding its index after a large backlog (its reports stop for the
rebuild), a store its refresher cannot read, and a worker gone or stuck.
Until every worker has reported once (the index loads at start), LDAP is
not ready either.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from annuaire.observability import rundir

STALE_AFTER = 5.0  # seconds, beyond one refresh interval
EXPECTED = "ldap.json"


@dataclass(frozen=True)
class WorkerState:
    worker: int
    pid: int
    position: int
    age: float  # seconds since the worker last confirmed its index current

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@dataclass(frozen=True)
class LdapStatus:
    workers: int
    interval: float
    states: dict[int, WorkerState]

    @property
    def bound(self) -> float:
        return STALE_AFTER + self.interval

    def behind(self, head: int | None = None) -> str | None:
        """Why LDAP must not be relied on (None: every worker within its bound). `head`: the
        journal's last id, to say how many changes a worker is behind."""
        late = []
        for n in range(self.workers):
            state = self.states.get(n)
            if state is None:
                late.append(f"worker {n} is loading its index")
            elif not state.alive():
                late.append(f"worker {n} (pid {state.pid}) is gone")
            elif state.age > self.bound:
                changes = f", {head - state.position:,} changes behind" if head and head > state.position else ""
                late.append(f"worker {n} last caught up with the store {state.age:.0f} s ago{changes}")
        if not late:
            return None
        return f"the LDAP index is behind the store (bound {self.bound:.0f} s): " + "; ".join(late)


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def expect(run_dir: str, workers: int, interval: float) -> None:
    """The supervisor: LDAP runs with `workers` workers refreshing every `interval` seconds."""
    _write(Path(run_dir) / EXPECTED, {"workers": max(1, workers), "interval": interval})


def report(worker: int, position: int) -> None:
    """An LDAP worker: its index now reflects the journal up to `position` (no-op outside a server)."""
    where = rundir.current()
    if where is None:
        return
    try:
        _write(Path(where) / f"ldap-worker-{worker}.json",
               {"pid": os.getpid(), "position": position, "at": time.monotonic()})
    except OSError:
        pass  # the run directory is gone: the server is stopping


def read(run_dir: str | None = None) -> LdapStatus | None:
    """What the LDAP workers last reported (None: this server runs no LDAP, or no server)."""
    where = run_dir or rundir.current()
    if where is None:
        return None
    try:
        expected = json.loads((Path(where) / EXPECTED).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    now = time.monotonic()
    states = {}
    for n in range(int(expected["workers"])):
        try:
            data = json.loads((Path(where) / f"ldap-worker-{n}.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            continue
        states[n] = WorkerState(n, int(data["pid"]), int(data["position"]), max(0.0, now - float(data["at"])))
    return LdapStatus(int(expected["workers"]), float(expected["interval"]), states)
