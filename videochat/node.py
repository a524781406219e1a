"""This process as a node behind a load balancer: ready, or draining.

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

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

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
