"""Every Redis client of the app is built here, from ``settings.REDIS``
(videochat/redisconfig.py): one server, or the primary a group of sentinels names.

- ``get_redis()``: one asyncio client per event loop (tests run many loops) for
  presence, chat wake-ups and rate limits.
- ``sync_client()``: a synchronous client (rooms, mentions, deliveries, health,
  metrics, per-address limits), one per caller and process.
- ``ChannelLayer``: channels_redis on the same kind of pool.
- ``RedisCache``: Django's cache backend on ``sync_client()``.
Celery and django-rq get their Sentinel settings from the settings (their own
Sentinel support); kombu and rq's clients do not come through here.

The asyncio pools are blocking (``BlockingConnectionPool``): redis-py 8's default
asyncio pool holds at most 100 connections and raises ``MaxConnectionsError``
for the 101st caller, so 101 sockets whose heartbeats arrived together on one
process crashed some of them (1011). A blocking pool makes the extra callers
wait for a connection another one releases (milliseconds; at most
``REDIS_POOL_TIMEOUT_S``).

After a failover (docs/operations.md): a connection to the old primary fails
(it died) or answers READONLY (it was demoted and is now a replica). redis-py's
Sentinel-managed connection turns READONLY into a ``ConnectionError`` and drops
the connection; the client's retry (redis-py 8: up to 10 tries, backoff 10 ms
doubling to 1 s) then reconnects, and every connect asks the sentinels for the
current primary. A pool also drops its idle connections when the sentinels
name a new primary. What still fails after the retries (a failover takes longer
than them) reaches the caller as a ``ConnectionError`` like any Redis outage.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.sentinel import Sentinel

from videochat import storeerrors
from videochat.loops import per_loop
from videochat.redisconfig import RedisConfig

# The sentinels answer from memory: a slow answer is a sick sentinel, try the next.
SENTINEL_TIMEOUT_S = 2.0


class BlockingSentinelConnectionPool(AsyncSentinelConnectionPool, aioredis.BlockingConnectionPool):
    """redis-py's asyncio Sentinel pool (it raises at ``max_connections``) that
    waits for a free connection instead, like the pool above."""


def _config() -> RedisConfig:
    return settings.REDIS


def _async_sentinel(config: RedisConfig) -> AsyncSentinel:
    return AsyncSentinel(
        list(config.sentinels),
        sentinel_kwargs=config.sentinel_kwargs(
            socket_timeout=SENTINEL_TIMEOUT_S, socket_connect_timeout=SENTINEL_TIMEOUT_S
        ),
    )


def async_pool(config: RedisConfig, **options: Any) -> aioredis.ConnectionPool:
    """A blocking asyncio pool to the server or to the current primary.
    ``options``: connection and pool options (``max_connections``, ``timeout``...)."""
    if not config.uses_sentinel:
        return aioredis.BlockingConnectionPool.from_url(
            config.url, connection_class=storeerrors.CountedAsyncConnection, **options
        )
    return BlockingSentinelConnectionPool(
        config.master,
        _async_sentinel(config),
        connection_class=storeerrors.CountedAsyncSentinelConnection,
        password=config.password,
        db=config.db,
        **options,
    )


def _client() -> aioredis.Redis:
    pool = async_pool(
        _config(),
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=settings.REDIS_POOL_TIMEOUT_S,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
        retry_on_timeout=True,
    )
    return aioredis.Redis.from_pool(pool)


get_redis = per_loop(_client)


def sync_client(
    *,
    decode_responses: bool = False,
    socket_timeout: float = 5,
    socket_connect_timeout: float = 2,
    **options: Any,
) -> redis.Redis:
    """A new synchronous client (keep it: it owns a connection pool)."""
    config = _config()
    options = {
        "decode_responses": decode_responses,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        **options,
    }
    if not config.uses_sentinel:
        return redis.Redis.from_url(
            config.url, connection_class=storeerrors.CountedConnection, **options
        )
    sentinel = Sentinel(
        list(config.sentinels),
        sentinel_kwargs=config.sentinel_kwargs(
            socket_timeout=min(socket_timeout, SENTINEL_TIMEOUT_S),
            socket_connect_timeout=min(socket_connect_timeout, SENTINEL_TIMEOUT_S),
        ),
    )
    return sentinel.master_for(
        config.master,
        connection_class=storeerrors.CountedSentinelConnection,
        password=config.password,
        db=config.db,
        **options,
    )


class SharedClient:
    """One ``sync_client(**options)`` per process, made on first use; a forked
    child (Celery's prefork pool) makes its own rather than share sockets."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._clients: dict[tuple[int, RedisConfig], redis.Redis] = {}

    def __call__(self) -> redis.Redis:
        import os

        # Keyed by configuration too: a test (or a settings override) may point elsewhere.
        key = (os.getpid(), _config())
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = sync_client(**self._options)
        return client


class ChannelLayer(RedisChannelLayer):
    """channels_redis with a blocking pool (its own is redis-py's raising one),
    to one server or to the primary of a Sentinel group."""

    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" in host:
            return aioredis.BlockingConnectionPool.from_url(host.pop("address"), **host)
        if "master_name" in host:
            sentinel = AsyncSentinel(
                host.pop("sentinels"), sentinel_kwargs=host.pop("sentinel_kwargs", None)
            )
            return BlockingSentinelConnectionPool(host.pop("master_name"), sentinel, **host)
        return super().create_pool(index)


class _CacheClient(RedisCacheClient):
    def __init__(self, servers: Any, **options: Any) -> None:
        super().__init__(servers, **options)
        self._shared = SharedClient()

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        return self._shared()


class RedisCache(DjangoRedisCache):
    """Django's Redis cache on ``sync_client()`` (so with Sentinel too);
    ``LOCATION`` is only a label."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _CacheClient
