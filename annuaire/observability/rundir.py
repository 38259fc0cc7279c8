"""The run directory: what the processes of one `annuaire serve` share on disk.

The server is several processes (HTTP workers spawned, LDAP workers forked);
`/metrics` and `/readyz` are answered by whichever HTTP worker the kernel
chose, yet must speak for the whole server. So the supervisor creates one
private directory (mode 0700) at start and removes it at stop; every process
is attached to it (`attach`: the supervisor before it forks the LDAP process,
whose workers inherit it; each spawned HTTP worker from its arguments, never
through the environment) and writes there:

- its metric values (`metrics.use_directory`: one memory-mapped file per
  process and metric type, added up at scrape time; a dead worker's counts
  stay);
- for an LDAP worker, its journal position (`ldapstatus`).

A process not attached (tests embedding the app, `uvicorn --factory`) keeps
its metrics in memory and checks no LDAP worker.
"""

from __future__ import annotations

import shutil
import tempfile

_current: str | None = None


def create() -> str:
    """A fresh private directory for one server run."""
    return tempfile.mkdtemp(prefix="annuaire-serve-")


def attach(path: str) -> None:
    """Make this process record into `path` (before it records anything; forked children inherit it)."""
    global _current
    from annuaire.observability import metrics

    _current = path
    metrics.use_directory(path)


def current() -> str | None:
    """The run directory this process is attached to (None: a process on its own)."""
    return _current


def remove(path: str) -> None:
    """At the server's stop: its metrics and status files go with it."""
    global _current
    shutil.rmtree(path, ignore_errors=True)
    if _current == path:
        _current = None
