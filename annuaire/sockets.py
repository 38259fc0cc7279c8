"""Listening sockets shared by worker processes (LDAP and HTTP).

Each worker gets its OWN socket on the same port (SO_REUSEPORT): the kernel
spreads new connections across them. A single socket shared by the workers
lets the one that wakes first accept a whole burst of connections, and
keep-alive clients then stay on it while the other cores idle.
"""

from __future__ import annotations

import errno
import socket


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A non-blocking listening socket with SO_REUSEPORT (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def ensure_free(host: str, port: int) -> None:
    """OSError (EADDRINUSE) when something already listens on `port`.

    SO_REUSEPORT lets our sockets join ANY listener of the same user that set it too: a
    second server on the same port would silently get a share of the connections. A probe
    bound without SO_REUSEPORT fails on a port that has a listener, whoever holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (TIME_WAIT is no listener)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"port {port} on {host} is already in use by another process") from None
            raise


def listen_many(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port number (the first one picks it when `port` is 0),
    refused when another process listens on that port (`ensure_free`)."""
    if port:
        ensure_free(host, port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(listen(host, port))
            port = sockets[0].getsockname()[1]
    except OSError:
        for s in sockets:
            s.close()
        raise
    return sockets
