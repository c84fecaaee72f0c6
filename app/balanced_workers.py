"""The web service's worker processes, each listening on a socket of its own for the shared port.

uvicorn's workers share one listening socket, and whichever wakes first accepts: connections
opened even one after another can land three to one on a worker, which is then the bound while
the other idles (bench/api.py prints the split; docs/performance.md). On Linux each worker here
binds its own socket with SO_REUSEPORT, and the kernel spreads new connections across the
workers' sockets by their addresses. uvicorn's supervisor is kept as it is (health checks,
restarts, signals); only the socket each worker serves differs.
"""

from __future__ import annotations

import socket
import sys

from uvicorn import Config
from uvicorn.supervisors import multiprocess

from nightshift.platform.errors import NightshiftError


def balanced() -> bool:
    """Whether the kernel spreads connections across sockets sharing a port (Linux's SO_REUSEPORT)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class _OwnSocketWorker(multiprocess.Process):
    """uvicorn's worker process, serving a listening socket of its own instead of the parent's."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # runs in the worker
        own = reuse_port_socket(self.config.host, self.config.port)
        own.listen(self.config.backlog)
        super().target([own])


def run(config: Config) -> None:
    """Serve with config.workers processes, each on its own socket (call only where balanced())."""
    # Free, checked as uvicorn's own bind does: a socket without SO_REUSEPORT binds only a port
    # nobody holds (with it, it would join a server already there, an old one say, and share).
    with socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            raise NightshiftError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    # Bound, never listening: it holds the port while workers come and go; the kernel sends
    # connections only to listening sockets.
    holder = reuse_port_socket(config.host, config.port)
    # uvicorn's supervisor makes its workers from this module name (at start and on every restart).
    made = multiprocess.Process
    multiprocess.Process = _OwnSocketWorker  # type: ignore[misc]
    try:
        multiprocess.Multiprocess(config, sockets=[holder]).run()
    finally:
        multiprocess.Process = made  # type: ignore[misc]
        holder.close()
