"""Count Redis and database errors where they happen, whoever catches them.

Redis: every client this project builds (``videochat.redis``) uses these connection
classes (the Sentinel-managed ones with Sentinel), which count a failed connect, send
or read. Database: an execute wrapper on every connection counts a failed query, and a request that
failed on a database error (a connect that never reached a query) is counted by
``got_request_exception``. ``metrics.store_error`` counts one exception once.
"""

from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from django.core.signals import got_request_exception
from django.db import DatabaseError
from django.db.backends.signals import connection_created
from redis.exceptions import NoScriptError, RedisError

from . import metrics


def _redis_failed(exc: BaseException) -> None:
    if isinstance(exc, RedisError) and not isinstance(exc, NoScriptError):
        metrics.store_error("redis", exc)


class CountedAsyncConnection(redis.asyncio.Connection):
    async def connect(self) -> None:
        try:
            await super().connect()
        except BaseException as exc:
            _redis_failed(exc)
            raise

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().send_packed_command(*args, **kwargs)
        except BaseException as exc:
            _redis_failed(exc)
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except BaseException as exc:
            _redis_failed(exc)
            raise


class CountedConnection(redis.Connection):
    def connect(self) -> None:
        try:
            super().connect()
        except BaseException as exc:
            _redis_failed(exc)
            raise

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().send_packed_command(*args, **kwargs)
        except BaseException as exc:
            _redis_failed(exc)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except BaseException as exc:
            _redis_failed(exc)
            raise


class CountedAsyncSentinelConnection(
    CountedAsyncConnection, redis.asyncio.sentinel.SentinelManagedConnection
):
    """Counted, and asks the sentinels for the primary on every (re)connect.

    redis-py 8 reconnects a dropped connection inside ``send_packed_command``
    through ``connect_check_health``, which skips the Sentinel-managed
    ``connect()`` and dials the address the connection last had: after a
    failover, a pipeline's retry (the rate limiter's, for one) kept dialling the
    dead primary for over a minute (tests/test_sentinel.py). Reconnect through
    ``connect()``, which asks the sentinels first.
    """

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        if not self.is_connected:
            await self.connect()
        await super().send_packed_command(*args, **kwargs)

    async def disconnect(self, nowait: bool = False, *args: Any, **kwargs: Any) -> None:
        # Never wait for the close handshake (redis-py waits up to socket_connect_timeout
        # and then raises TimeoutError in place of the command's own error): after a
        # failover the peer is a dead primary, and joins failed one by one on it.
        await super().disconnect(True, *args, **kwargs)


class CountedSentinelConnection(CountedConnection, redis.sentinel.SentinelManagedConnection):
    """Counted, and asks the sentinels for the primary on every (re)connect
    (the same redis-py 8 bypass as the asyncio class above)."""

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        if self._sock is None:
            self.connect()
        super().send_packed_command(*args, **kwargs)


def _count_query_errors(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        metrics.store_error("database", exc)
        raise


def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _count_query_errors not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query_errors)


def _on_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    import sys

    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseError):
        metrics.store_error("database", exc)


def install() -> None:
    """Connect the database hooks (``videochat`` does at start-up, every process)."""
    connection_created.connect(_on_connection, dispatch_uid="huddle-db-errors")
    got_request_exception.connect(_on_request_exception, dispatch_uid="huddle-db-request-errors")
