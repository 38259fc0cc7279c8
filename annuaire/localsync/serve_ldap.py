"""`annuaire local-sync serve-ldap` without its command line: the one-account endpoint until SIGTERM/SIGINT.

Here rather than in the CLI so that the CLI only parses and prints, and so
that the loop (signals, ready file, closing) can be run and tested alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

from annuaire.errors import InvalidInput
from annuaire.localsync.one_account import OneAccountConfig, start_one_account


def write_ready(ready_file: str, port: int) -> None:
    """`{"port": …, "pid": …}`, renamed into place: a reader never sees half of it."""
    tmp = ready_file + ".tmp"
    Path(tmp).write_text(json.dumps({"port": port, "pid": os.getpid()}))
    os.replace(tmp, ready_file)


def serve(config: OneAccountConfig, *, ready_file: str = "",
          on_listening: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT. `on_listening(port)` is called once connections are accepted
    (before the ready file is written); InvalidInput when the address cannot be listened on."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            service = await start_one_account(config)
        except OSError as exc:
            where = f"{config.host}:{config.port or 'auto'}"
            raise InvalidInput(f"cannot listen on {where}: {exc.strerror or exc}") from exc
        if on_listening is not None:
            on_listening(service.port)
        if ready_file:
            write_ready(ready_file, service.port)
        await stop.wait()
        await service.close()

    asyncio.run(main())
