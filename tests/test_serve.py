"""`annuaire serve --http-workers N`: several processes answer the same port, each on its own socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from annuaire.store import open_store
from tests.processes import wait_http


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def _established(pid: int, port: int) -> int:
    """TCP connections to `port` that process `pid` holds open (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:  # 01 = ESTABLISHED
                count += 1
    return count


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_two_http_workers_serve_the_same_port(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    open_store(url).dispose()  # (serve refuses a missing store)
    port = _free_port()
    env = dict(os.environ, ANNUAIRE_DB=url, ANNUAIRE_EXTRACTIONS_DIR=str(tmp_path / "out"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "annuaire", "serve", "--http-port", str(port), "--ldap-port", "0",
         "--http-workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        status = wait_http(f"http://127.0.0.1:{port}/fhir/v2/metadata", proc)
        assert status == 200, proc.stderr.read1().decode() if proc.poll() is not None else status
        # The workers are spawned multiprocessing children of the serve process.
        pids = {p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(pids) == 2
        # Each worker accepts on its own socket: 16 keep-alive connections opened at
        # once land on both (all on one: probability 2**-15), and each one answers.
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(16)]
        try:
            for client in clients:
                assert client.get("/?q=dupont").status_code == 200
            per_worker = {pid: _established(pid, port) for pid in pids}
            assert sum(per_worker.values()) == 16, per_worker
            assert all(per_worker.values()), per_worker
        finally:
            for client in clients:
                client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def test_zero_http_workers_is_refused(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "annuaire", "--db", f"sqlite:///{tmp_path / 'a.sqlite'}", "serve",
         "--http-workers", "0", "--ldap-port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "--http-workers" in result.stderr


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        try:
            children = _children(todo.pop())
        except FileNotFoundError:  # ended meanwhile
            continue
        found |= children
        todo.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
@pytest.mark.parametrize("http_workers", ["1", "2"])
def test_sigterm_stops_every_process_of_the_server(tmp_path: Path, http_workers: str):
    """A service manager stops `annuaire serve` with SIGTERM: the LDAP process, its workers and the
    HTTP workers end with it (uvicorn re-raises the signal; its default action used to end the
    main process alone)."""
    url = f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    open_store(url).dispose()  # (serve refuses a missing store)
    port, ldap_port = _free_port(), _free_port()
    env = dict(os.environ, ANNUAIRE_DB=url, ANNUAIRE_EXTRACTIONS_TIME="off")
    proc = subprocess.Popen(
        [sys.executable, "-m", "annuaire", "serve", "--http-port", str(port), "--ldap-port", str(ldap_port),
         "--http-workers", http_workers],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        ldap_up = http_up = False
        while time.monotonic() < deadline and not (ldap_up and http_up):
            with socket.socket() as s:
                ldap_up = s.connect_ex(("127.0.0.1", ldap_port)) == 0
            try:
                http_up = httpx.get(f"http://127.0.0.1:{port}/fhir/v2/metadata").status_code == 200
            except httpx.TransportError:
                time.sleep(0.1)
        assert ldap_up and http_up
        family = _descendants(proc.pid)
        assert len(family) >= 3  # the LDAP process and its workers at least
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.1)
        assert not [p for p in family if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("held", ["ldap", "http"])
def test_a_port_held_by_another_listener_is_refused_before_announcing(tmp_path: Path, held: str):
    """Another server's SO_REUSEPORT listener on our port: our workers' sockets could join it and the
    kernel would split the connections between two stores. `serve` refuses before its banner."""
    from annuaire.sockets import listen

    open_store(f"sqlite:///{tmp_path / 'a.sqlite'}").dispose()  # (serve refuses a missing store)
    other = listen("127.0.0.1", 0)  # as another `annuaire serve` listens: with SO_REUSEPORT
    try:
        taken = str(other.getsockname()[1])
        http_port = taken if held == "http" else str(_free_port())
        ldap_port = taken if held == "ldap" else str(_free_port())
        result = subprocess.run(
            [sys.executable, "-m", "annuaire", "--db", f"sqlite:///{tmp_path / 'a.sqlite'}", "serve",
             "--http-port", http_port, "--ldap-port", ldap_port, "--http-workers", "2"],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, ANNUAIRE_EXTRACTIONS_TIME="off"),
        )
    finally:
        other.close()
    assert result.returncode == 1
    assert f"{held.upper()} port" in result.stderr and "already in use" in result.stderr
    assert "Web search page" not in result.stdout
