"""Listening sockets for ``imnm serve --workers N``.

uvicorn's own multi-worker mode hands every worker one shared listening socket. Which worker
accepts a connection is then whichever wakes first, and a load generator or an EHR that opens
its connections in a burst can find them nearly all on one worker: measured here with 2 workers
and 50 keep-alive clients, one worker did about 80 % of the work and the other sat idle, so
two workers answered no more than one.

With ``SO_REUSEPORT`` (Linux, the BSDs) each worker listens on its own socket bound to the
same port and the kernel spreads new connections over them by a hash of the addresses. Every
socket is made with protocol ``IPPROTO_TCP`` so that asyncio sets ``TCP_NODELAY`` on each
connection it accepts (uvicorn's own socket has protocol 0, asyncio skips it, and Nagle's
algorithm with delayed ACKs then holds each response about 40 ms). Where ``SO_REUSEPORT`` is
missing, all workers share one socket as before.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from uvicorn.supervisors import Multiprocess


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP listening socket on ``host:port`` that workers can inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


class ReusePortMultiprocess(Multiprocess):
    """uvicorn's supervisor (start, health checks, restarts, signals), with a socket of its
    own for each worker it starts. The supervisor's copy of a worker's socket is closed once
    the worker has it: a listening socket nobody accepts on would still get its share of the
    connections."""

    def __init__(self, config: Any, first: socket.socket,
                 make_socket: Callable[[], socket.socket]) -> None:
        self._make_socket = make_socket
        self._spare: list[socket.socket] = [first]  # the caller's bound socket goes first
        self._handed: list[socket.socket] = []
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        """A fresh socket for each worker uvicorn is about to start."""
        sock = self._spare.pop() if self._spare else self._make_socket()
        self._handed.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, _value: list[socket.socket]) -> None:
        pass  # uvicorn's __init__ stores the shared list; each worker gets its own instead

    def _close_handed(self) -> None:
        # A worker's socket is pickled to it (its descriptor duplicated for the child) when
        # the process starts, so the supervisor's copy can go.
        while self._handed:
            self._handed.pop().close()


def _then_close_handed(name: str) -> Callable[[ReusePortMultiprocess], None]:
    """uvicorn's method ``name``, which may start workers, then the supervisor's copies of
    their sockets closed."""
    starts_workers = getattr(Multiprocess, name)

    def method(self: ReusePortMultiprocess) -> None:
        starts_workers(self)
        self._close_handed()

    method.__name__ = name
    return method


# Every supervisor method that starts a worker: at start-up, on a restart (HUP), when one
# died, and when one more is asked for (TTIN).
for _name in ("init_processes", "restart_all", "keep_subprocess_alive", "handle_ttin"):
    setattr(ReusePortMultiprocess, _name, _then_close_handed(_name))


def supervisor(config: Any, host: str, port: int) -> Multiprocess:
    """The supervisor for ``config.workers`` workers on ``host:port``; raises OSError when the
    port cannot be bound (in use, not allowed)."""
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    first = listening_socket(host, port, reuse_port=reuse_port)
    if not reuse_port:
        return Multiprocess(config, sockets=[first])
    bound_port = first.getsockname()[1]  # the same port for every worker, even when 0 was asked
    return ReusePortMultiprocess(config, first,
                                 lambda: listening_socket(host, bound_port, reuse_port=True))
