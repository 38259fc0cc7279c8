"""Run a parse generator in a worker process, so that parsing and writing use both cores.

A thread would not do: the database drivers take the GIL back for every row
they write, so a parsing thread and a writing thread convoy. A process parses
on its own core and sends its chunks back pickled through a pipe. A thread of
the importer receives them as bytes (the GIL is released while it waits) into
a bounded buffer, so that the worker keeps parsing while the importer is busy
elsewhere (loading the stored digests, building indexes) — up to BUFFER bytes
ahead. Small files are parsed in-process by the same generator.

Errors keep their meaning: an ImportFileError in the worker is raised again
in the importer with its file and line; a worker that dies is reported.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from annuaire.errors import DirectoryError, ImportFileError

MIN_BYTES = 32 << 20  # files smaller than this are parsed in-process
BUFFER = 128 << 20  # bytes of parsed chunks a worker may have ahead of the importer


class Reading:
    """The chunks of `parse(*args)`, parsed by a worker process started at once (large files)."""

    def __init__(self, parse: Callable[..., Iterator[Any]], *args: Any, label: str, size: int) -> None:
        self.label = label
        self.size = size
        self._inline: Iterator[Any] | None = None
        self._worker = None
        if size < MIN_BYTES:
            self._inline = parse(*args)
            return
        # fork: the child starts at once with the parse code imported; it never
        # touches the parent's database connection and leaves with os._exit.
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._worker = context.Process(target=_work, args=(send, parse, args), name=f"reader {label}", daemon=True)
        self._worker.start()
        send.close()
        self._buffer: queue.Queue[bytes | None] = queue.Queue()
        self._room = threading.Semaphore(max(1, BUFFER // (2 << 20)))  # chunks are ~2 MB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name=f"receive {label}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        """Move the worker's messages into the buffer as bytes; None marks the end of the pipe."""
        try:
            while not self._stop.is_set():
                self._room.acquire()
                if self._stop.is_set():
                    break
                self._buffer.put(self._receive.recv_bytes())
        except (EOFError, OSError):
            pass
        self._buffer.put(None)

    def __iter__(self) -> Iterator[Any]:
        if self._inline is not None:
            yield from self._inline
            return
        while True:
            message = self._buffer.get()
            self._room.release()
            if message is None:
                self._worker.join(5)
                raise DirectoryError(f"{self.label}: the reader process stopped (exit code {self._worker.exitcode})")
            kind, payload = pickle.loads(message)
            if kind == "chunk":
                yield payload
            elif kind == "end":
                return
            elif kind == "file-error":
                raise ImportFileError(*payload)
            else:
                raise DirectoryError(f"{self.label}: the reader process failed:\n{payload}")

    def close(self) -> None:
        """Stop the worker (if still running) and the receiving thread."""
        if self._worker is None:
            return
        self._stop.set()
        if self._worker.is_alive():
            self._worker.terminate()
        self._worker.join()
        self._room.release()  # a pump waiting for room sees the stop; one reading sees the end of the pipe
        self._thread.join(5)
        self._receive.close()
        self._worker = None


def _work(send: Connection, parse: Callable[..., Iterator[Any]], args: tuple) -> None:
    gc.freeze()  # the parent's objects: never traversed here (that would copy their pages)
    try:
        for chunk in parse(*args):
            send.send(("chunk", chunk))
        send.send(("end", None))
    except ImportFileError as exc:
        send.send(("file-error", (exc.path, exc.detail, exc.line)))
    except BaseException:  # noqa: BLE001 - reported to the importer, which raises it
        send.send(("error", traceback.format_exc()))
    finally:
        send.close()
