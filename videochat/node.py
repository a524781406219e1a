"""This process as a node behind a load balancer: ready, or draining.

A drain (``kill -USR1``; videochat.webpool sends it to its workers on SIGTERM)
stops taking work: /readyz turns 503, the listening sockets close (new
connections go to other workers or nodes), every open room socket is closed
with 4503 (the client reconnects at once, through the balancer, to another node
and resumes its session there: no leave, no lost message), and the process
stops when the last socket has gone or after ``DRAIN_TIMEOUT_S``.

``GET /readyz`` is answered by this process alone, first in the middleware chain
(before host validation, sessions and the database): 200 ``ready`` while it
takes new work, 503 ``draining`` once it was asked to stop. The balancer's and
Kubernetes' readiness checks use it. Shared stores (database, Redis, MongoDB)
are ``/healthz``'s business: when one is down it is down for every node, and
taking every node out of the balancer would turn a degraded service into none
(clients ride out a store's outage with their outboxes and reconnects). A
check that waited on a store's connect timeout also outlasted the balancer's
check timeout and took healthy nodes out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

log = structlog.get_logger(__name__)

READY_PATH = "/readyz"

_draining = False


def draining() -> bool:
    return _draining


def drain_start() -> None:
    """From now on /readyz says 503: the balancer sends new connections elsewhere."""
    global _draining
    _draining = True


def readiness() -> HttpResponse:
    if _draining:
        return HttpResponse("draining\n", status=503, content_type="text/plain")
    return HttpResponse("ready\n", content_type="text/plain")


class ReadinessMiddleware:
    """Answers /readyz before anything else runs (first in MIDDLEWARE)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        if request.path == READY_PATH:
            return readiness()
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if request.path == READY_PATH:
            return readiness()
        return await self.get_response(request)


# --- drain -----------------------------------------------------------------
# Sockets register a closer (an async callable that closes them with the
# "server draining" code) while they are open; a drain calls them all.
_closers: set[Callable[[], Awaitable[None]]] = set()
_loop: asyncio.AbstractEventLoop | None = None
_all_closed: asyncio.Event | None = None  # made by a drain, set when the last socket goes
DRAIN_TIMEOUT_S = 20.0


def socket_opened(closer: Callable[[], Awaitable[None]]) -> None:
    global _loop
    _loop = asyncio.get_running_loop()
    _closers.add(closer)


def socket_closed(closer: Callable[[], Awaitable[None]]) -> None:
    _closers.discard(closer)
    if not _closers and _all_closed is not None:
        _all_closed.set()


def open_sockets() -> int:
    return len(_closers)


async def drain(*, timeout_s: float = DRAIN_TIMEOUT_S) -> int:
    """Stop taking work and ask every open socket to move; returns those still open
    after ``timeout_s`` (their clients were asked; the process may go now)."""
    global _all_closed
    drain_start()
    _stop_listening()
    _all_closed = asyncio.Event()
    await asyncio.gather(*(close() for close in list(_closers)), return_exceptions=True)
    if _closers:
        try:
            await asyncio.wait_for(_all_closed.wait(), timeout_s)
        except TimeoutError:
            pass
    return len(_closers)


def _stop_listening() -> None:
    """Close this process's listening sockets (under daphne: Twisted's ports), so new
    connections go to other workers or nodes instead of waiting in our backlog."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor, tcp

    for reader in list(reactor.getReaders()):  # type: ignore[misc]
        if isinstance(reader, tcp.Port):
            reader.stopListening()


async def _drain_then_stop() -> None:
    left = await drain()
    log.info("node.drained", sockets_left=left)
    # daphne's own SIGTERM handling stops the server as usual.
    os.kill(os.getpid(), signal.SIGTERM)


def install_drain_signal(signum: int = signal.SIGUSR1) -> None:
    """``kill -USR1`` drains this process, then stops it (videochat.webpool sends it on
    SIGTERM). Only the main thread may set signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(_signum: int, _frame: object) -> None:
        if _loop is None or _loop.is_closed():
            drain_start()
            os.kill(os.getpid(), signal.SIGTERM)
            return
        _loop.call_soon_threadsafe(lambda: _tasks.add(_loop.create_task(_drain_then_stop())))

    signal.signal(signum, on_signal)


_tasks: set[asyncio.Task] = set()
