"""Listening sockets shared by worker processes (LDAP and HTTP).

Each worker gets its OWN socket on the same port (SO_REUSEPORT): the kernel
spreads new connections across them. A single socket shared by the workers
lets the one that wakes first accept a whole burst of connections, and
keep-alive clients then stay on it while the other cores idle.
"""

from __future__ import annotations

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


def listen_many(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port number (the first one picks it when `port` is 0)."""
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
