"""Ids on every log line: a request id per HTTP request, a session id per socket.

HTTP: ``RequestIdMiddleware`` (first in MIDDLEWARE) keeps a valid incoming
``X-Request-ID`` (a proxy's) or makes one, binds it to structlog's contextvars for
the request and returns it in the response's ``X-Request-ID``.

Sockets: the room consumer binds ``session`` (random per socket) at connect, then
``room`` and ``member`` once known, and ``peer`` after hello. structlog's contextvars
belong to the consumer's task; tasks it starts (``run_beside``) copy them.
"""

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_for(incoming: str | None) -> str:
    """The caller's id if it is a sane token (a proxy's), else a new one."""
    if incoming and _VALID.match(incoming):
        return incoming
    return secrets.token_hex(16)


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        request_id = request_id_for(request.headers.get(HEADER))
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response: HttpResponse = self.get_response(request)
        response[HEADER] = request_id
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request.headers.get(HEADER))
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            get: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
            response = await get(request)
        response[HEADER] = request_id
        return response


def socket_session_bind() -> str:
    """Start a socket's log context: a fresh ``session`` id (returned)."""
    session = secrets.token_hex(8)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(session=session)
    return session


def socket_bind(**ids: Any) -> None:
    """Add ``room``, ``member`` or ``peer`` to this socket's log lines."""
    structlog.contextvars.bind_contextvars(**ids)


# Ids a Celery task carries from whoever queued it (a request, a socket) to its logs.
TASK_HEADER = "huddle_log_ids"
_CARRIED = ("request_id", "session", "room", "member", "peer")


def ids_for_task() -> dict[str, Any]:
    """The current request's or socket's ids, for a task being queued."""
    bound = structlog.contextvars.get_contextvars()
    return {k: bound[k] for k in _CARRIED if k in bound}


def task_bind(*, task_id: str, carried: object) -> None:
    """A task's log context: its own id and the ids of what queued it."""
    structlog.contextvars.clear_contextvars()
    ids = {k: v for k, v in carried.items() if k in _CARRIED} if isinstance(carried, dict) else {}
    structlog.contextvars.bind_contextvars(task_id=task_id, **ids)
