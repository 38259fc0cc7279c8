"""Progress in the user's terms with an overall time left, for `generate`, `import` and `extract`
(issue 23): each job's plan is the sum of what its steps weigh, every step is carried to its end,
and the wording is the user's (no helper process, no tables, no "0/1 bytes")."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from annuaire import progress
from annuaire.extractions import pace as extraction_pace
from annuaire.progress import Lines, Overall
from annuaire.synthetic import generate
from annuaire.synthetic import pace as generation_pace

INTERNAL = re.compile(r"helper|table|waiting|scratch|0/1\b", re.IGNORECASE)


class Recorder:
    """A reporter telling the overall share (progress.Planned) that keeps what it was told."""

    def __init__(self) -> None:
        self.plans: list[float] = []
        self.steps: list[dict] = []
        self.overall = Overall()

    def plan(self, total: float) -> None:
        self.plans.append(total)
        self.overall.plan(total)

    def start(self, label: str, total: int, weight: float = 0.0, unit: str = "") -> None:
        self.steps.append({"label": label, "total": total, "weight": weight, "unit": unit, "done": 0})
        self.overall.start(total, weight)

    def advance(self, amount: int) -> None:
        self.steps[-1]["done"] += amount
        self.overall.advance(amount)

    def done(self) -> None:
        pass

    def check(self) -> None:
        """One plan, the sum of the steps' weights; every step weighed and carried to its end."""
        assert len(self.plans) == 1, self.plans
        assert sum(s["weight"] for s in self.steps) == pytest.approx(self.plans[0], rel=1e-6)
        for step in self.steps:
            assert step["weight"] > 0 and step["done"] == step["total"], step
            assert not INTERNAL.search(step["label"]), step["label"]
        assert self.overall.share() == pytest.approx(1.0)


def test_the_overall_share_and_time_left_follow_the_weights() -> None:
    overall = Overall()
    overall.plan(10.0)
    overall.start(200, 4.0)
    overall.advance(100)
    assert overall.share() == pytest.approx(0.2)
    overall.started = time.monotonic() - 30  # 30 s for a fifth: 120 s left
    assert overall.left() == pytest.approx(120, rel=0.01)
    overall.start(3, 6.0)  # the first step is over whatever it advanced
    overall.advance(1)
    assert overall.share() == pytest.approx(0.6)
    assert progress.time_left(overall.left()) == "about 20 s left"
    assert progress.duration(3725) == "1 h 02 min" and progress.duration(200) == "3 min 20 s"
    assert progress.amount(0, 1, "") == ""  # a step without a measure shows no "0/1"
    assert progress.amount(1_500_000, 3_000_000, "bytes") == "1.5/3.0 MB"


def test_a_plain_reporter_still_gets_the_steps(tmp_path: Path) -> None:
    """Reporters that only know start/advance/done (a script's) are driven as before."""
    calls: list[str] = []

    class Plain:
        def start(self, label: str, total: int) -> None:
            calls.append(label)

        def advance(self, amount: int) -> None:
            pass

        def done(self) -> None:
            calls.append("done")

    generate(tmp_path, 50, 1, day=1, progress=Plain())
    assert calls[0] == "professionals" and calls[-1] == "done"


def test_generate_plans_its_whole_work(tmp_path: Path) -> None:
    recorder = Recorder()
    generate(tmp_path, 3000, 1, day=2, progress=recorder)
    assert recorder.plans == [pytest.approx(generation_pace.whole(3000, 2))]
    assert [s["label"] for s in recorder.steps] == [
        "professionals", "mailboxes", "daily churn", "PS_LibreAcces_Personne_activite",
        "Extraction_Correspondance_MSSante"]
    recorder.check()


@pytest.mark.parametrize("helper", [False, True], ids=["one process", "helper process"])
def test_import_plans_its_whole_work_in_user_terms(store, tmp_path: Path, monkeypatch, helper: bool) -> None:
    from annuaire.referential import importer

    if helper:  # (the helper process of large first imports, for small files)
        monkeypatch.setattr(importer, "FIRST_LOAD_MIN_SIZE", 0)
    for day in (0, 1):
        generate(tmp_path / str(day), 200, 1, day=day)
        recorder = Recorder()
        importer.import_paths(store, sorted((tmp_path / str(day)).glob("*.zip")), progress=recorder)
        recorder.check()
        labels = [s["label"] for s in recorder.steps]
        assert labels[-1] == "Comparing the MSSanté domains"
        if day == 0 and helper:
            assert "Writing the structures, activities, savoir-faire, diplomas" in labels
        if day == 1:
            assert any(label.startswith("Comparing PS_LibreAcces_Personne_activite") for label in labels)


def test_extract_counts_its_lines_first(store, tmp_path: Path) -> None:
    from annuaire.extractions.generate import generate as extract
    from annuaire.referential.importer import import_paths

    generate(tmp_path / "data", 300, 2)
    import_paths(store, sorted((tmp_path / "data").glob("*.zip")))
    recorder = Recorder()
    manifests = extract(store, tmp_path / "out", progress=recorder)
    recorder.check()
    written = {f["name"]: f["lines"] for m in manifests for f in m.files}
    assert {s["label"].removeprefix("Writing "): s["total"] for s in recorder.steps} == written
    assert all(s["unit"] == "lines" for s in recorder.steps) and min(written.values()) > 0
    assert recorder.plans == [pytest.approx(sum(
        extraction_pace.weight(s["label"].split(" ")[1].rsplit("_", 1)[0], s["total"]) for s in recorder.steps))]


def test_without_a_terminal_a_line_now_and_then() -> None:
    out = io.StringIO()
    lines = Lines(Console(file=out, width=200), "import", period=0)
    lines.plan(10.0)
    lines.start("Reading PS_LibreAcces_Personne_activite_202601010300.txt", 2_000_000, 5.0, unit="bytes")
    lines.advance(1_000_000)
    lines.start("Comparing the MSSanté domains", 10, 5.0, unit="domains")
    lines.advance(10)
    lines.done()
    said = out.getvalue().splitlines()
    assert said[1] == "import: 25% done; Reading PS_LibreAcces_Personne_activite_202601010300.txt (1.0/2.0 MB)"
    assert said[-2] == "import: 100% done; Comparing the MSSanté domains (10/10 domains)"
    assert re.fullmatch(r"import: done in \d+ s", said[-1])
    quiet = io.StringIO()  # a short job, lines every 30 s: nothing said
    short = Lines(Console(file=quiet), "import")
    short.plan(1.0)
    short.start("Reading", 10, 1.0)
    short.advance(10)
    short.done()
    assert quiet.getvalue() == ""


def _in_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr: what a person sees."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, cwd=cwd,
                            env=dict(os.environ, COLUMNS="150", TERM="xterm"))
    os.close(terminal)
    chunks = []
    while True:
        ready, _, _ = select.select([controller], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    text = b"".join(chunks).decode("utf-8", "replace")
    return proc.wait(60), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_generate_shows_its_progress_in_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "annuaire", "generate", "data", "--professionals", "3000"]
    code, seen = _in_a_terminal(command, tmp_path)
    assert code == 0, seen
    assert "generate (overall)" in seen and re.search(r"100 % done in \d+ s", seen)
    assert "professionals" in seen and "PS_LibreAcces_Personne_activite" in seen
    code, seen = _in_a_terminal([*command[:3], "-q", *command[3:]], tmp_path)
    assert code == 0 and "overall" not in seen
    piped = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "persons: 3000" in piped.stderr
    assert "overall" not in piped.stderr and "done" not in piped.stderr  # (a short run: no periodic line)
