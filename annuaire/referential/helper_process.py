"""A helper process: one pickled job in, pickled answers out (one, or one per step).

An import uses the machine's second core through one (`changed_persons.Ahead`,
`firstload.FirstLoad`). The job is handed over by a thread, since the helper
takes it only once started (~0.2 s); a helper no longer needed is killed.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any


class Helper:
    """`function` of `module` run on `job` in another Python process."""

    def __init__(self, module: str, function: str, job: object) -> None:
        self._answers: list[object] = []
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from {module} import {function}; {function}()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
        )
        threading.Thread(target=self._send, args=(job,), daemon=True).start()

    def _send(self, job: object) -> None:
        stdin = self._process.stdin
        assert stdin is not None  # stdin=PIPE
        try:
            with stdin:
                pickle.dump(job, stdin, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:  # the helper died: answer() raises
            pass

    def answer(self, n: int = 0) -> object:
        """Answer `n` (waits for it); raises (EOFError, pickle errors…) if the helper died without it."""
        while len(self._answers) <= n:
            self._answers.append(pickle.load(self._process.stdout))  # type: ignore[arg-type]  # stdout=PIPE: never None
        return self._answers[n]

    def close(self) -> None:
        """Stop the helper (killed if still working)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.stdout.close()  # type: ignore[union-attr]  # stdout=PIPE: never None
        self._process.wait()


def serve(work: Callable[[Any], Iterator[object]]) -> None:
    """The helper's side: the job from stdin, each answer `work` yields to stdout."""
    for answer in work(pickle.load(sys.stdin.buffer)):
        sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
        sys.stdout.buffer.flush()
