"""Writing access lines without ever holding a request.

A request must not wait for the log: stderr may be a pipe that its reader
drains slowly or not at all (a full pipe blocks every write), a file may sit
on a slow disk. So the caller formats its line and hands it over (`put`) to a
writer thread of the same process; beyond `capacity` lines waiting, lines are
dropped and counted, and a line saying how many (`dropped(count)`) is written
once the writer catches up.

Lines reach the file descriptor in writes of whole lines of at most
`PIPE_BUF` bytes: atomic on a pipe and, with O_APPEND, on a file, so the
lines of the server's processes (which share the descriptor) never mix. Each
process's lines keep their order; two processes' lines may come out of order by
up to GATHER_SECONDS (each line carries its time). The
thread is started in each process at its first line (a forked LDAP worker
has none of its parent's threads). The logging module is not involved: no
record per line, and no logging set-up (uvicorn's) can close it.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO

CAPACITY = 10_000  # lines waiting to be written, per process
# After a write the writer lets lines gather this long: a busy server's lines then go out in a few
# writes a second, not one thread wake-up (and one GIL hand-over) per request.
GATHER_SECONDS = 0.05
PIPE_BUF = getattr(select, "PIPE_BUF", 4096)


class LineWriter:
    def __init__(self, stream: IO[str], dropped: Callable[[int], str], capacity: int = CAPACITY, *,
                 owned: bool = False) -> None:
        """`dropped(count)`: the line telling that `count` lines were dropped. `owned`: the
        stream is this writer's (a file it opened), closed by `close`."""
        self.stream = stream
        self.dropped_line = dropped
        self.capacity = capacity
        self.owned = owned
        try:
            self.fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None  # a stream without a descriptor (a test's capture): written through it
        self._fresh()
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self) -> None:
        """New queue, condition and no thread: in a forked child, the parent's are not usable."""
        self._lines: deque[str] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._dropped = 0
        self._writer: threading.Thread | None = None

    def put(self, line: str) -> None:
        with self._ready:
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="access-log", daemon=True)
                self._writer.start()
            if len(self._lines) >= self.capacity:
                self._dropped += 1
                return
            self._lines.append(line)
            if len(self._lines) == 1:  # (the writer waits only on an empty queue)
                self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._lines and not self._dropped:
                    self._ready.wait()
                lines = list(self._lines)
                self._lines.clear()
                dropped, self._dropped = self._dropped, 0
            if dropped:
                lines.append(self.dropped_line(dropped))
            try:
                self._write(lines)
            except (OSError, ValueError):
                time.sleep(1.0)  # the reader is gone (or the file closed): lines are lost, requests go on
            time.sleep(GATHER_SECONDS)

    def _write(self, lines: list[str]) -> None:
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            data = (line + "\n").encode("utf-8", "replace")
            if chunk and size + len(data) > PIPE_BUF:
                self._out(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(data)
            size += len(data)
        if chunk:
            self._out(b"".join(chunk))

    def _out(self, data: bytes) -> None:
        if self.fd is None:
            self.stream.write(data.decode("utf-8"))
            self.stream.flush()
            return
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

    def flush(self, wait: float = 1.0) -> None:
        """Wait (at most `wait` seconds: the reader may be stuck) for the lines handed over to be written."""
        deadline = time.monotonic() + wait
        while self._lines and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.flush()
        if self.owned:
            self.stream.close()
