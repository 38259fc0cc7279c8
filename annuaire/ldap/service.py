"""Running the LDAP server: in-process (tests, embedding) or as forked workers sharing the port.

    run_ldap(LdapConfig(store_url=..., port=3389, workers=2))     # blocking, forks workers
    start_ldap_process(config) -> multiprocessing.Process           # next to the HTTP server
    service = await start_in_process(config)                        # one worker inside this loop

Workers: the parent loads the index once, creates one listening socket per
worker with SO_REUSEPORT on the same port (the kernel spreads connections
over them), then forks; each worker runs its own asyncio loop on its socket,
follows the journal itself, and shares the per-address counters with the
others through shared memory (connections, burst budgets and the extraction
ledger of distinct entries per network and account, created before the fork).
A worker that dies is replaced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from annuaire.gcpause import freeze_long_lived, settle
from annuaire.ldap import messages as m
from annuaire.ldap.accounts import load_accounts
from annuaire.ldap.backend import Refresher, load_index
from annuaire.ldap.directory import Directory
from annuaire.ldap.limits import LdapLimits, SharedCounters
from annuaire.ldap.server import (
    LdapConnection,
    ServerState,
    make_ssl_context,
    sweep_idle,
)
from annuaire.observability import ldapstatus
from annuaire.sockets import listen_many
from annuaire.store import open_store
from annuaire.store.follow import Cursor

if TYPE_CHECKING:
    from annuaire.config import Settings

log = logging.getLogger("annuaire.ldap")


@dataclass
class LdapConfig:
    store_url: str
    host: str = "127.0.0.1"
    port: int | None = 3389  # None: no plain LDAP listener; 0: any free port
    ldaps_port: int | None = None  # LDAPS listener (needs tls_cert/tls_key)
    base_dn: str = "o=annuaire-sante,c=fr"
    workers: int = 2
    tls_cert: str = ""
    tls_key: str = ""
    limits: LdapLimits = field(default_factory=LdapLimits)
    refresh_interval: float = 0.5  # seconds between two reads of the journal (see docs/architecture.md)
    ready_file: str = ""  # written (JSON: ports, pid) once the listeners accept connections

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @classmethod
    def from_settings(cls, settings: Settings, store_url: str, **overrides: Any) -> LdapConfig:
        """From annuaire.config.Settings (ldap_port 0 disables plain LDAP there, as on the command line)."""
        values: dict[str, Any] = {
            "store_url": store_url, "host": settings.host, "port": settings.ldap_port or None,
            "ldaps_port": settings.ldaps_port or None, "base_dn": settings.ldap_base_dn,
            "workers": settings.ldap_workers, "tls_cert": settings.tls_cert, "tls_key": settings.tls_key,
            "limits": settings.ldap_limits, "refresh_interval": settings.ldap_refresh,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _sockets(config: LdapConfig, count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """`count` listening sockets for each configured port, all on the same port number."""
    plain: list[socket.socket] = []
    secure: list[socket.socket] = []
    for wanted, out in ((config.port, plain), (config.ldaps_port if config.tls else None, secure)):
        if wanted is None:
            continue
        out.extend(listen_many(config.host, wanted, count))
    if not plain and not secure:
        raise ValueError("no LDAP listener: give a port (or an LDAPS port with a certificate)")
    return plain, secure


@dataclass
class Service:
    """A running in-process server (single worker)."""

    state: ServerState
    servers: list[asyncio.base_events.Server]
    tasks: list[asyncio.Task]
    port: int | None
    ldaps_port: int | None
    refresher: Refresher

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for s in self.servers:
            s.close()
        for conn in list(self.state.connections):
            conn.disconnect(m.UNAVAILABLE, "the server is shutting down")
        await asyncio.sleep(0.05)  # let the notices go out
        for conn in list(self.state.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for s in self.servers:
            await s.wait_closed()


async def _start(config: LdapConfig, directory: Directory, cursor: Cursor, counters: SharedCounters,
                 plain: list[socket.socket], secure: list[socket.socket], worker: int = 0) -> Service:
    store = open_store(config.store_url, upgrade=False)
    ssl_context = make_ssl_context(config.tls_cert, config.tls_key) if config.tls else None
    loop = asyncio.get_running_loop()
    state = ServerState(directory, config.limits, counters, {}, ssl_context)
    state.accounts = await loop.run_in_executor(None, load_accounts, store)

    def reload_accounts() -> None:
        state.accounts = load_accounts(store)

    directory.positions = counters.lowest_position

    def report(position: int) -> None:
        counters.report_position(worker, position)
        ldapstatus.report(worker, position)  # for the HTTP side's /readyz and /metrics

    refresher = Refresher(store, directory, cursor, interval=config.refresh_interval, on_accounts=reload_accounts,
                          report=report)
    servers = []
    for sock in plain:
        servers.append(await loop.create_server(lambda: LdapConnection(state), sock=sock))
    for sock in secure:
        servers.append(await loop.create_server(lambda: LdapConnection(state, tls=True), sock=sock,
                                                ssl=ssl_context, ssl_handshake_timeout=30))
    tasks = [asyncio.ensure_future(refresher.run()), asyncio.ensure_future(sweep_idle(state))]
    port = plain[0].getsockname()[1] if plain else None
    ldaps_port = secure[0].getsockname()[1] if secure else None
    return Service(state, servers, tasks, port, ldaps_port, refresher)


def _directory(config: LdapConfig) -> tuple[Directory, Cursor]:
    store = open_store(config.store_url)
    try:
        index, cursor = load_index(store, f"ou=mailboxes,{config.base_dn}")
    finally:
        store.dispose()
    limits = config.limits
    directory = Directory(index, config.base_dn, tls=config.tls, min_chars=limits.min_chars,
                          unselective_share=limits.unselective_share, unselective_floor=limits.unselective_floor)
    # The index is millions of long-lived objects: keep them out of the cyclic GC's generations,
    # so that collections stay short (no pause proportional to the directory) and forked
    # workers do not touch (copy) the shared pages.
    freeze_long_lived()
    return directory, cursor


async def start_in_process(config: LdapConfig) -> Service:
    """One worker in the running event loop (tests, embedding)."""
    loop = asyncio.get_running_loop()
    directory, cursor = await loop.run_in_executor(None, _directory, config)
    plain, secure = _sockets(config, 1)
    counters = SharedCounters(limits=config.limits, published=directory.index.live)
    counters.start_positions(1, cursor.position)
    return await _start(config, directory, cursor, counters, plain, secure)


def _write_ready(config: LdapConfig, plain: list[socket.socket], secure: list[socket.socket]) -> None:
    info = {"port": plain[0].getsockname()[1] if plain else None,
            "ldaps_port": secure[0].getsockname()[1] if secure else None, "pid": os.getpid(),
            "workers": config.workers}
    if config.ready_file:
        tmp = config.ready_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp, config.ready_file)
    log.info("LDAP listening on %s (port %s, LDAPS port %s, %d workers)", config.host, info["port"],
             info["ldaps_port"], config.workers)


def _worker(config: LdapConfig, directory: Directory, cursor: Cursor, counters: SharedCounters,
            plain: socket.socket | None, secure: socket.socket | None, worker: int) -> None:
    """Body of one forked worker: its own event loop on its own sockets."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        service = await _start(config, directory, cursor, counters, [plain] if plain else [],
                               [secure] if secure else [], worker)
        await stop.wait()
        await service.close()

    asyncio.run(main())


def run_ldap(config: LdapConfig) -> None:
    """Serve until SIGTERM/SIGINT. Forks `config.workers` workers (1 = serve in this process)."""
    directory, cursor = _directory(config)
    # Fewer, larger young-generation collections: full collections (which walk every tracked
    # object outside the frozen index) become rare instead of following the plan cache's churn.
    settle()
    workers = max(1, config.workers)
    plain, secure = _sockets(config, workers)
    counters = SharedCounters(limits=config.limits, published=directory.index.live)
    counters.start_positions(workers, cursor.position)
    log.info("LDAP extraction ledger: %d network slots of %d entries, %d account slots of %d entries "
             "(%.0f MiB of shared memory, touched as used)", counters.networks.slots, counters.networks.size,
             counters.accounts.slots, counters.accounts.size, counters.ledger_bytes / 2**20)
    if workers == 1:
        async def single() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            service = await _start(config, directory, cursor, counters, plain, secure)
            _write_ready(config, plain, secure)
            await stop.wait()
            await service.close()

        asyncio.run(single())
        return
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def spawn(n: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _worker(config, directory, cursor, counters, plain[n] if plain else None,
                        secure[n] if secure else None, n)
            except BaseException:
                log.exception("LDAP worker %d failed", n)
                code = 1
            finally:
                os._exit(code)
        children[pid] = n

    def stop(_sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.flush()
    sys.stderr.flush()
    for n in range(workers):
        spawn(n)
    _write_ready(config, plain, secure)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        worker = children.pop(pid, None)
        if worker is not None and not stopping:
            log.error("LDAP worker %d (pid %d) exited with status %d; restarting it", worker, pid, status)
            if counters.recover_lock():
                log.error("LDAP worker %d died holding the shared counters' lock; released", worker)
            spawn(worker)


def start_ldap_process(config: LdapConfig) -> Any:
    """Run `run_ldap(config)` in a child process (for `annuaire serve`); returns the Process."""
    process = get_context("fork").Process(target=run_ldap, args=(config,), name="annuaire-ldap", daemon=False)
    process.start()
    return process
