"""Progress of long commands (generate, import, extract) in the user's terms: the step under
way and the time left for the whole command.

Library code announces its steps (`start`, `advance`, `done`). Through `steps(progress)` it
may also say what the whole job weighs (`plan`) and what each step weighs of it (`start(…,
weight=)`): estimated seconds at some reference scale, any unit as long as one job's steps
agree. The share of the whole done, and so the overall time left, follow from them.

On a terminal: two bars on stderr, the step and the whole command. Elsewhere (logs,
timers): a line every `PERIOD` seconds, so a short run prints nothing. Nothing with --quiet.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

PERIOD = 30.0  # seconds between two lines when no terminal shows a bar
MIN_ESTIMATE = (0.02, 2.0)  # share done and seconds elapsed before the time left is told


class Reporter(Protocol):
    """What library code calls: the steps of its work and how far each is."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, amount: int) -> None: ...
    def done(self) -> None: ...


@runtime_checkable
class Planned(Protocol):
    """A reporter that also tells the whole job's share done and time left."""

    def plan(self, total: float) -> None: ...
    def start(self, label: str, total: int, weight: float = 0.0, unit: str = "") -> None: ...
    def advance(self, amount: int) -> None: ...
    def done(self) -> None: ...


class Silent:
    def plan(self, total: float) -> None:
        pass

    def start(self, label: str, total: int, weight: float = 0.0, unit: str = "") -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


class Steps:
    """A reporter as library code drives it: plans and weights reach the reporters that use
    them; a plain `Reporter` (a test's recorder) gets the steps only."""

    def __init__(self, inner: Reporter | None) -> None:
        self.inner = inner if inner is not None else Silent()

    def plan(self, total: float) -> None:
        if isinstance(self.inner, Planned):
            self.inner.plan(total)

    def start(self, label: str, total: int, weight: float = 0.0, unit: str = "") -> None:
        if isinstance(self.inner, Planned):
            self.inner.start(label, total, weight, unit)
        else:
            self.inner.start(label, total)

    def advance(self, amount: int) -> None:
        self.inner.advance(amount)

    def done(self) -> None:
        self.inner.done()


def steps(progress: Reporter | None) -> Steps:
    """`progress` (None: silence) with plans and weights."""
    return progress if isinstance(progress, Steps) else Steps(progress)


class Overall:
    """The whole job: the share done from the weights of the steps, the time left from the
    pace since the first step."""

    def __init__(self) -> None:
        self.total = 0.0  # the plan: every step's weight
        self.finished = 0.0  # the weights of the steps over
        self.weight = 0.0  # the current step's
        self.step_total = 0
        self.step_done = 0
        self.started: float | None = None

    def plan(self, total: float) -> None:
        self.total = max(total, 0.0)
        self.finished = 0.0
        self.weight = 0.0
        self.started = time.monotonic()

    def start(self, total: int, weight: float) -> None:
        self.finished += self.weight
        self.weight, self.step_total, self.step_done = weight, total, 0
        if self.started is None:
            self.started = time.monotonic()

    def advance(self, amount: int) -> None:
        self.step_done += amount

    @property
    def planned(self) -> bool:
        return self.total > 0

    def share(self) -> float:
        """Share of the whole job done, 0 to 1."""
        if not self.planned:
            return 0.0
        step = min(1.0, self.step_done / self.step_total) if self.step_total > 0 else 0.0
        return min(1.0, (self.finished + self.weight * step) / self.total)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    def left(self) -> float | None:
        """Seconds left for the whole job; None until the pace is known."""
        share, elapsed = self.share(), self.elapsed()
        if share < MIN_ESTIMATE[0] or elapsed < MIN_ESTIMATE[1]:
            return None
        return elapsed * (1 - share) / share


def time_left(seconds: float | None) -> str:
    """What to say of the time left (nothing while the pace is not known)."""
    if seconds is None:
        return ""
    return "finishing" if seconds < 1 else f"about {duration(seconds)} left"


def duration(seconds: float) -> str:
    """`1 h 05 min`, `3 min 20 s`, `45 s`."""
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def amount(done: int, total: int, unit: str) -> str:
    """How far a step is, in its own unit (nothing for a step without a measure)."""
    if total <= 1 and not unit:
        return ""
    if unit == "bytes":
        return f"{done / 1e6:,.1f}/{total / 1e6:,.1f} MB"
    return f"{done:,}/{total:,}{' ' + unit if unit else ''}"


class _Amount(ProgressColumn):
    def render(self, task: Task) -> Text:
        if task.fields.get("whole"):
            return Text(f"{task.percentage:3.0f} %")
        return Text(amount(int(task.completed), int(task.total or 0), task.fields.get("unit", "")))


class _Left(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(task.fields.get("left", ""))


class Bar:
    """Two rich bars on a terminal: the step under way, and the whole command with its time left."""

    def __init__(self, console: Console, job: str) -> None:
        self.job = job
        self.overall = Overall()
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), _Amount(), _Left(),
                                  console=console, transient=False)
        self._whole: TaskID | None = None
        self._task: TaskID | None = None

    def plan(self, total: float) -> None:
        self.overall.plan(total)

    def start(self, label: str, total: int, weight: float = 0.0, unit: str = "") -> None:
        self.overall.start(total, weight)
        if self._task is None and self._whole is None:
            self._progress.start()
        if self._whole is None and self.overall.planned:
            self._whole = self._progress.add_task(f"{self.job} (overall)", total=1000, whole=True)
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._task = self._progress.add_task(f"  {label}", total=total or None, unit=unit)
        self._refresh()

    def advance(self, amount: int) -> None:
        self.overall.advance(amount)
        if self._task is not None:
            self._progress.advance(self._task, amount)
        self._refresh()

    def _refresh(self) -> None:
        if self._whole is None:
            return
        self._progress.update(self._whole, completed=int(self.overall.share() * 1000),
                              left=time_left(self.overall.left()))

    def done(self) -> None:
        if self._task is None and self._whole is None:
            return
        if self._whole is not None:
            self._progress.update(self._whole, completed=1000,
                                  left=f"done in {duration(self.overall.elapsed())}")
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._progress.stop()
        self._task = self._whole = None
        self.overall = Overall()


class Lines:
    """For logs and timers: a line every `PERIOD` seconds (share done, time left, the step)."""

    def __init__(self, console: Console, job: str, period: float = PERIOD) -> None:
        self.console = console
        self.job = job
        self.period = period
        self.overall = Overall()
        self.label = ""
        self.unit = ""
        self._next = time.monotonic() + period
        self._said = False

    def plan(self, total: float) -> None:
        self.overall.plan(total)

    def start(self, label: str, total: int, weight: float = 0.0, unit: str = "") -> None:
        self.overall.start(total, weight)
        self.label, self.unit = label, unit
        self._maybe_say()

    def advance(self, amount: int) -> None:
        self.overall.advance(amount)
        self._maybe_say()

    def _maybe_say(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.period
        self._said = True
        self.console.print(self.line(), highlight=False, soft_wrap=True)

    def line(self) -> str:
        o = self.overall
        parts = [f"{self.job}:"]
        if o.planned:
            left = time_left(o.left())
            parts.append(f"{o.share():.0%} done" + (f", {left}" if left else "") + ";")
        step = amount(o.step_done, o.step_total, self.unit)
        parts.append(self.label + (f" ({step})" if step else ""))
        return " ".join(parts)

    def done(self) -> None:
        if self._said:
            self.console.print(f"{self.job}: done in {duration(self.overall.elapsed())}", highlight=False)
        self.overall = Overall()
        self._said = False


def reporter(console: Console, quiet: bool, job: str = "progress") -> Reporter:
    """Bars when a person watches, a line now and then in logs, silence with `--quiet`."""
    if quiet:
        return Silent()
    return Bar(console, job) if console.is_terminal else Lines(console, job)
