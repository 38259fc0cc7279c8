"""A throwaway PostgreSQL primary and its streaming hot-standby replica, for the replica tests and bench.

Real servers, as an operator sets them up (docs/operations.md, "Read replicas"):
`initdb`, then `pg_basebackup --write-recovery-conf` from the running primary,
in a temporary directory, on free ports, run as the `postgres` user when we are
root (PostgreSQL refuses to run as root). Both listen on 127.0.0.1 with trust
authentication; nothing else on the machine is touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "postgres"
DATABASE = "annuaire"
SETTINGS = {  # the primary's; the replica inherits them by the base backup
    "listen_addresses": "'127.0.0.1'",
    "wal_level": "replica",
    "max_wal_senders": "5",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "fsync": "off",  # a test cluster: speed over durability
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "max_standby_streaming_delay": "30s",
    "wal_receiver_status_interval": "1s",
    "logging_collector": "off",
}


def binaries() -> Path | None:
    """The newest PostgreSQL server binaries installed (Debian's layout), or the ones on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_basebackup")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def unavailable() -> str | None:
    """Why a primary and replica cannot be built here (None: they can)."""
    if not sys.platform.startswith("linux"):
        return f"PostgreSQL replicas are tested on Linux only (this is {sys.platform})"
    folder = binaries()
    if folder is None or not all((folder / name).exists() for name in ("initdb", "pg_ctl", "pg_basebackup")):
        return "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(USER)
        except KeyError:
            return f"running as root without a {USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root without runuser"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *args] if os.geteuid() == 0 else args


@dataclass
class Server:
    data: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def libpq(self, database: str = DATABASE) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _run([str(binaries() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_owner([str(binaries() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                       capture_output=True, timeout=60)

    def sql(self, statement: str, database: str = DATABASE) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.libpq(database), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []


def _run(args: list[str]) -> None:
    done = subprocess.run(_as_owner(args), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


class Pair:
    """A primary with database `annuaire`, and a hot standby streaming from it (a replication slot)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="annuaire-replica-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, USER, USER)
        self.primary = Server(self.root / "primary", free_port(), self.root / "primary.log")
        self.replica = Server(self.root / "replica", free_port(), self.root / "replica.log")
        self.secrets: dict[str, str] = {}  # what a test made on the primary (tokens, keys)

    def start(self) -> Pair:
        bin_ = binaries()
        assert bin_ is not None
        p, r = self.primary, self.replica
        _run([str(bin_ / "initdb"), "-D", str(p.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
              "--no-sync"])
        conf = {**SETTINGS, "port": str(p.port), "unix_socket_directories": f"'{self.root}'"}
        with open(p.data / "postgresql.conf", "a", encoding="utf-8") as out:
            out.write("".join(f"\n{k} = {v}" for k, v in conf.items()) + "\n")
        p.start()
        p.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
        _run([str(bin_ / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(p.port), "-U", USER, "-D", str(r.data),
              "--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast", "--create-slot",
              "--slot=replica1", "--no-sync"])
        with open(r.data / "postgresql.conf", "a", encoding="utf-8") as out:
            out.write(f"\nport = {r.port}\n")
        r.start()
        self.wait_replayed()
        return self

    def wait_replayed(self, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary wrote so far."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0][0]:
                    return
            except Exception:  # noqa: BLE001 - still starting
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica did not replay {target} within {timeout} s")
            time.sleep(0.05)

    def close(self) -> None:
        self.replica.stop("immediate")
        self.primary.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
