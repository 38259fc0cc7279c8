"""Serving the HTTP app from several worker processes, one socket each.

uvicorn's own multi-worker mode shares one listening socket: the worker that
wakes first accepts a whole burst of connections, and keep-alive clients stay
on it (measured: 16 FHIR client connections, all served by one worker at
307 searches/s while the other core idled). Here every worker listens on its
own SO_REUSEPORT socket of the same port (annuaire.sockets) and the kernel
spreads the connections by a hash of their addresses and ports. A hash can
still put all of a few long-lived connections on one worker (4 connections,
2 workers: one time in 8), so run two workers per core: with 4 workers on 2
cores, both cores are busy unless all land on one worker (one time in 64).

Workers are started with `spawn` (a clean interpreter: the parent holds a store
engine and threads that must not be forked). Each receives, as Process
arguments, the store URL, the Settings and the counters shared by all workers
(annuaire.http.limits.SharedLimits: FHIR key rates, failed-authentication
throttles, connections per address), and builds the app itself with the
slow-client guard (annuaire.http.guard). A worker that dies is replaced (its
replacement gets the same counters); SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import time
from typing import Any

from annuaire.config import Settings
from annuaire.http.limits import SharedLimits
from annuaire.sockets import listen_many

log = logging.getLogger("annuaire.http")
STARTUP_SECONDS = 10.0  # a worker dying sooner than this is broken, not unlucky: stop


class WorkerFailed(RuntimeError):
    pass


def _worker(sock: socket.socket, options: dict[str, Any], number: int, store_url: str, settings: Settings,
            shared: SharedLimits, run_dir: str | None = None, read_url: str | None = None) -> None:
    import uvicorn

    from annuaire.gcpause import settle
    from annuaire.http import limits
    from annuaire.http.app import create_app
    from annuaire.http.guard import server_options
    from annuaire.observability import process
    from annuaire.store import open_store

    process.join(run_dir, settings)  # the server's metrics files and access log (before the app records)
    limits.install(shared, number)  # before the app: its FHIR and API counters are the shared ones
    app = create_app(open_store(store_url, read_url=read_url), settings)  # read_url: a replica (--read-db)
    config = {**options, **server_options(settings, shared, base=options.get("http"))}
    settle()  # (measured: ~3 % of a FHIR search's CPU)
    uvicorn.Server(uvicorn.Config(app, **config)).run(sockets=[sock])


def serve(host: str, port: int, workers: int, options: dict[str, Any], store_url: str, settings: Settings,
          run_dir: str | None = None, *, read_url: str | None = None) -> None:
    """Run `workers` uvicorn processes on host:port until SIGTERM/SIGINT.

    `options` are uvicorn.Config keyword arguments (log level, TLS…), without
    host and port; `run_dir` the server's run directory (annuaire.observability.rundir).
    """
    sockets = listen_many(host, port, workers)
    shared = SharedLimits(workers)
    ctx = multiprocessing.get_context("spawn")
    running: dict[int, multiprocessing.process.BaseProcess] = {}
    started: dict[int, float] = {}
    stopping = False

    def start(n: int) -> None:
        process = ctx.Process(target=_worker, args=(sockets[n], options, n, store_url, settings, shared, run_dir,
                                                            read_url),
                              name=f"annuaire-http-{n}")
        process.start()
        running[n], started[n] = process, time.monotonic()

    def stop(_sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for n in range(workers):
            start(n)
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p in running.values()], timeout=0.5)
            for n, process in list(running.items()):
                if not process.is_alive() and not stopping:
                    if time.monotonic() - started[n] < STARTUP_SECONDS:
                        raise WorkerFailed(f"HTTP worker {n} exited with code {process.exitcode} while starting")
                    log.error("HTTP worker %d (pid %s) exited with code %s; restarting it", n, process.pid,
                              process.exitcode)
                    start(n)
    finally:
        for process in running.values():
            if process.is_alive():
                process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for process in running.values():
            process.join(30)
            if process.is_alive():
                process.kill()
        for sock in sockets:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
