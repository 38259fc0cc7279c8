"""Progress reporting for long work: rich bars on a terminal, silence otherwise."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)


class Reporter(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, amount: int) -> None: ...
    def done(self) -> None: ...


class Silent:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


class Bar:
    """One rich bar per task, following bytes read."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self._task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        if self._task is None:
            self._progress.start()
        elif not self._progress.tasks[self._task].finished:
            self._progress.update(self._task, completed=self._progress.tasks[self._task].total)
        self._task = self._progress.add_task(label, total=total or None)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def done(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


def reporter(console: Console, quiet: bool) -> Reporter:
    """A bar when a person watches, silence for scripts and `--quiet`."""
    return Bar(console) if console.is_terminal and not quiet else Silent()
