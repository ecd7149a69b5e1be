"""Connections for ``imnm serve --workers N``: the supervisor accepts, and deals each
connection to the workers in turn.

uvicorn's own multi-worker mode hands every worker one shared listening socket. Which worker
accepts a connection is then whichever wakes first, and a load generator or an EHR that opens
its connections in a burst found them nearly all on one worker: measured here with 2 workers
and 50 keep-alive clients, one worker did about 80 % of the work and the other sat idle.

A socket of each worker's own on the port (``SO_REUSEPORT``) spread connections by a hash of
their addresses: fair on average, but a client's few long-lived connections land as they fall
(50 split 24/26, 23/27, 31/19 in four runs), and the clients of the busier worker wait the
longer. An EHR's integration engine keeps just such a small pool of connections to a CDS
service. With 2 workers and 50 clients, half the calls waited for the busier worker: p99 was
1.6 to 1.8 times the median, against 1.2 to 1.3 with the load split evenly (two one-worker
services, 25 clients each).

So the supervisor listens and accepts, and passes each connection (its descriptor, over a Unix
socket per worker, ``SCM_RIGHTS``) to the next worker in turn; a worker serves what it is handed
exactly as uvicorn serves what it accepts. Only the connection is handed over, once: its
requests go straight to the worker. A worker joins the turn once it says it serves (so a
replacement still importing is not dealt connections another worker could serve at once); one
that has died is skipped, and one whose channel is full is passed over for that connection. Every
connection gets ``TCP_NODELAY``: without it, Nagle's algorithm with delayed ACKs held each
response about 40 ms (uvicorn's shared socket had protocol 0, and asyncio skipped it). Where
descriptors cannot be passed (``socket.send_fds`` is missing), the workers share one socket as
uvicorn does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
import uvicorn.supervisors.multiprocess as uvicorn_multiprocess
from uvicorn.supervisors import Multiprocess

LOG = logging.getLogger("uvicorn.error")

HAND_TIMEOUT_SECONDS = 1.0  # a worker whose channel stays full this long is passed over


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening), with ``TCP_NODELAY``, which the
    connections it accepts inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


READY = b"ready"
"""What a worker sends on its channel once it serves: only then is it dealt connections."""


class Dealer:
    """Accepts on ``listener`` and passes each connection to the next of ``channels`` (the
    supervisor's ends of the workers' Unix sockets) until ``stop`` is set.

    A worker's channel is ``starting`` until the worker says :data:`READY` on it: a worker
    being started (at a restart, or to replace one that died) takes a second or two to import
    and build the app, and a connection dealt to it would wait that long while another worker
    is free. Only when no worker is ready yet (the service is starting) are connections dealt
    to the starting ones, to be served as soon as they are."""

    def __init__(self, listener: socket.socket, stop: threading.Event) -> None:
        self.listener = listener
        self.stop = stop
        self.channels: list[socket.socket] = []  # ready
        self.starting: list[socket.socket] = []
        self.lock = threading.Lock()
        self._turn = 0

    def add(self, channel: socket.socket) -> None:
        channel.settimeout(HAND_TIMEOUT_SECONDS)
        with self.lock:
            self.starting.append(channel)

    def run(self) -> None:
        self.listener.settimeout(0.5)  # to see ``stop`` between connections
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # out of descriptors, or the listener closed at shutdown
                if self.stop.is_set() or self.listener.fileno() == -1:
                    return
                LOG.error("Could not accept a connection: %s", exc.strerror)
                self.stop.wait(0.1)
                continue
            with conn:  # the supervisor's copy; the worker has its own once handed
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if not self.hand(conn):
                    LOG.error("No worker could take a connection; it was closed")

    def _promote(self) -> None:
        """Move the channels whose worker has said it is ready (or drop those whose worker
        died first) from ``starting`` to ``channels``. Called under the lock."""
        if not self.starting:
            return
        poller = select.poll()  # (not select.select: no limit on descriptor numbers)
        for channel in self.starting:
            poller.register(channel, select.POLLIN)
        answered = {fd for fd, _ in poller.poll(0)}
        for channel in [c for c in self.starting if c.fileno() in answered]:
            try:
                said = channel.recv(16)
            except OSError:
                said = b""
            self.starting.remove(channel)
            if said == READY:
                self.channels.append(channel)
            else:  # the worker died before it served
                channel.close()

    def hand(self, conn: socket.socket) -> bool:
        """Pass ``conn`` to the next ready worker that takes it (to a starting one when none
        is ready); False when none did."""
        with self.lock:
            self._promote()
            for pool in (self.channels, self.starting):
                for _ in range(len(pool)):
                    if not pool:
                        break
                    channel = pool[self._turn % len(pool)]
                    self._turn += 1
                    try:
                        socket.send_fds(channel, [b"c"], [conn.fileno()])
                        return True
                    except TimeoutError:
                        continue  # this worker is not reading (stuck): the next one
                    except OSError:  # the worker has gone; its replacement has its own channel
                        pool.remove(channel)
                        channel.close()
        return False

    def close(self) -> None:
        with self.lock:
            for channel in self.channels + self.starting:
                channel.close()
            self.channels.clear()
            self.starting.clear()


class HandOffServer(uvicorn.Server):
    """A worker's uvicorn server that serves the connections handed to it over
    ``sockets[0]`` (its Unix channel) instead of accepting on a listening socket."""

    _channel: socket.socket | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's lifespan; no listening socket
        if not sockets or self.should_exit:
            return
        channel = sockets[0]
        channel.setblocking(False)
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:  # as uvicorn's startup makes each connection's
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state,
                app_state=self.lifespan.state, _loop=loop)

        pending: set[asyncio.Task[Any]] = set()

        async def serve(conn: socket.socket) -> None:
            try:
                await loop.connect_accepted_socket(protocol, conn)
            except OSError:  # the client left before the worker took the connection
                conn.close()

        def take() -> None:
            # Every connection waiting on the channel, not one per turn of the loop: a burst
            # of 25 left the last waiting 25 turns (p99.9 250 ms where it was 70).
            while True:
                try:
                    _, fds, _, _ = socket.recv_fds(channel, 16, 16)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    fds = []
                if not fds:  # the supervisor has gone: no more connections will come
                    loop.remove_reader(channel.fileno())
                    self.should_exit = True
                    return
                for fd in fds:
                    conn = socket.socket(fileno=fd)
                    conn.setblocking(False)
                    task = loop.create_task(serve(conn))
                    pending.add(task)
                    task.add_done_callback(pending.discard)

        loop.add_reader(channel.fileno(), take)
        self._channel = channel
        channel.send(READY)  # the supervisor deals this worker connections from now on

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._channel is not None and self._channel.fileno() != -1:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
        await super().shutdown(sockets=sockets)  # closes the channel with the other sockets


class HandOffProcess(uvicorn_multiprocess.Process):
    """uvicorn's worker process, running a :class:`HandOffServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = HandOffServer(config=self.config)
        return self._server


@contextlib.contextmanager
def _workers_as(kind: type[uvicorn_multiprocess.Process]) -> Iterator[None]:
    """uvicorn's supervisor makes its workers as ``Process(config, sockets)``, by the name in
    its module: that name is ``kind`` for the duration (in the supervising process only)."""
    original = uvicorn_multiprocess.Process
    uvicorn_multiprocess.Process = kind  # type: ignore[misc]
    try:
        yield
    finally:
        uvicorn_multiprocess.Process = original  # type: ignore[misc]


class HandOffMultiprocess(Multiprocess):
    """uvicorn's supervisor (start, health checks, restarts, signals) that also listens on the
    port and deals connections to its workers in turn (see the module's docstring). Each
    worker it starts gets a Unix socket of its own; the supervisor's copy of the worker's end
    is closed once the worker has it."""

    def __init__(self, config: Any, listener: socket.socket) -> None:
        super().__init__(config, sockets=[])
        self.listener = listener
        self.dealer = Dealer(listener, self.should_exit)
        self._handed: list[socket.socket] = []

    @property
    def sockets(self) -> list[socket.socket]:
        """A fresh channel for each worker uvicorn is about to start."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.dealer.add(mine)
        self._handed.append(theirs)
        return [theirs]

    @sockets.setter
    def sockets(self, _value: list[socket.socket]) -> None:
        pass  # uvicorn's __init__ stores the shared list; each worker gets its own channel

    def _close_handed(self) -> None:
        # A worker's channel is pickled to it (its descriptor duplicated for the child) when
        # the process starts, so the supervisor's copy can go: the worker's death then
        # closes the channel, and the dealer skips it.
        while self._handed:
            self._handed.pop().close()

    def run(self) -> None:
        self.listener.listen(self.config.backlog)  # queued before the dealer takes them
        dealer = threading.Thread(target=self.dealer.run, name="imnm-dealer", daemon=True)
        dealer.start()
        try:
            with _workers_as(HandOffProcess):
                super().run()
        finally:
            self.should_exit.set()
            dealer.join(timeout=2)
            self.listener.close()
            self.dealer.close()


def _then_close_handed(name: str) -> Callable[[HandOffMultiprocess], None]:
    """uvicorn's method ``name``, which may start workers, then the supervisor's copies of
    their channels closed."""
    starts_workers = getattr(Multiprocess, name)

    def method(self: HandOffMultiprocess) -> None:
        starts_workers(self)
        self._close_handed()

    method.__name__ = name
    return method


# Every supervisor method that starts a worker: at start-up, on a restart (HUP), when one
# died, and when one more is asked for (TTIN).
for _name in ("init_processes", "restart_all", "keep_subprocess_alive", "handle_ttin"):
    setattr(HandOffMultiprocess, _name, _then_close_handed(_name))


def supervisor(config: Any, host: str, port: int) -> Multiprocess:
    """The supervisor for ``config.workers`` workers on ``host:port``; raises OSError when the
    port cannot be bound (in use, not allowed)."""
    listener = listening_socket(host, port)
    config.port = listener.getsockname()[1]  # the port bound, when 0 asked for any
    if not hasattr(socket, "send_fds"):
        return Multiprocess(config, sockets=[listener])
    return HandOffMultiprocess(config, listener)
