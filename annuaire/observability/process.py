"""What each process of a server does first: join the run directory, open the access log."""

from __future__ import annotations

from annuaire.config import Settings
from annuaire.observability import accesslog, rundir


def join(run_dir: str | None, settings: Settings) -> None:
    """Record metrics into `run_dir` (None: in this process) and write access lines as `settings` say.
    Forked children (the LDAP process and its workers) inherit both; spawned HTTP workers call it."""
    if run_dir is not None:
        rundir.attach(run_dir)
    accesslog.configure(settings.access_log, settings.log_format)
