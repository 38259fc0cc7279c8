"""Daily generation of the extractions inside `annuaire serve`, off the serving path.

A daemon thread sleeps until `Settings.extractions_time` (Paris time, like
the file names) and then runs the generation in a SUBPROCESS
(`python -m annuaire.extractions.generate`): writing 2 million lines in the
server's own process would hold the GIL and slow every other interface. At
start-up it generates at once when no extraction exists yet. Several server
processes may share one directory: a lock file lets one generate, and a
process that finds today's extraction already written skips its turn.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

from annuaire import formats
from annuaire.config import Settings, child_environ
from annuaire.errors import ConfigError
from annuaire.extractions import catalog
from annuaire.extractions.snapshot import PARIS

log = logging.getLogger("annuaire.extractions")


def parse_time(text: str) -> tuple[int, int]:
    """`HH:MM` -> (hour, minute); ValueError names the setting."""
    try:
        hour, minute = (int(part) for part in text.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        raise ValueError(f"extractions_time must be HH:MM (24 h, Paris time), not {text!r}") from None
    return hour, minute


def next_run(after: datetime, at: tuple[int, int]) -> datetime:
    """The first `at` (Paris wall-clock time) strictly after `after`."""
    local = after.astimezone(PARIS)
    candidate = local.replace(hour=at[0], minute=at[1], second=0, microsecond=0)
    if candidate <= local:
        candidate = (candidate + timedelta(days=1)).replace(hour=at[0], minute=at[1])
    return candidate


class ExtractionScheduler:
    """Start with `.start()`; `.stop()` ends the thread and any running generation."""

    def __init__(self, db_url: str, settings: Settings) -> None:
        self.db_url = db_url
        self.outdir = Path(settings.extractions_dir)
        self.keep_days = settings.extractions_keep_days
        try:
            self.at = parse_time(settings.extractions_time)
        except ValueError as exc:
            raise ConfigError(f"ANNUAIRE_EXTRACTIONS_TIME: {exc}") from None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="extractions-scheduler", daemon=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self.runs = 0  # completed generations, for tests and logs

    def start(self) -> ExtractionScheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)

    def _loop(self) -> None:
        if not all(catalog.latest(self.outdir, kind) for kind in catalog.KINDS):
            self.run_now()
        while not self._stop.is_set():
            due = next_run(datetime.now(PARIS), self.at)
            # Wake up at least every minute: robust to clock and DST changes.
            while not self._stop.is_set() and datetime.now(PARIS) < due:
                self._stop.wait(min(60.0, max(0.1, (due - datetime.now(PARIS)).total_seconds())))
            if self._stop.is_set():
                return
            if self._already_done(due):
                continue
            self.run_now()

    def _already_done(self, due: datetime) -> bool:
        """Another server process sharing the directory already generated this round."""
        ts = due.strftime(formats.TIMESTAMP_FORMAT)
        return all((e := catalog.latest(self.outdir, kind)) is not None and e.ts >= ts for kind in catalog.KINDS)

    def run_now(self) -> bool:
        """Generate in a subprocess; False when another process holds the lock or it failed."""
        self.outdir.mkdir(parents=True, exist_ok=True)
        with open(self.outdir / ".generate.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("extractions: another process is generating; skipped")
                return False
            env = child_environ(ANNUAIRE_DB=self.db_url)  # the generator opens the store itself
            cmd = [sys.executable, "-m", "annuaire.extractions.generate", str(self.outdir), str(self.keep_days)]
            log.info("extractions: generating into %s", self.outdir)
            self._proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = self._proc.communicate()
            code = self._proc.returncode
            self._proc = None
        if code != 0:
            log.error("extractions: generation failed (exit %s): %s", code, err.decode(errors="replace").strip())
            return False
        self.runs += 1
        log.info("extractions: %s", out.decode(errors="replace").strip().replace("\n", "; "))
        return True


def make_scheduler(db_url: str, settings: Settings) -> ExtractionScheduler | None:
    """The scheduler, not started; None when disabled (extractions_time empty or 'off'). ConfigError
    on a time that is not HH:MM: `annuaire serve` checks it before starting anything."""
    if settings.extractions_time.strip().lower() in ("", "off", "none"):
        return None
    return ExtractionScheduler(db_url, settings)
