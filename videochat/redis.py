"""One asyncio Redis client per event loop (tests run many loops), and the channel layer.

Both draw from a ``BlockingConnectionPool``: redis-py 8's default asyncio
pool holds at most 100 connections and raises ``MaxConnectionsError`` for the
101st caller, so 101 sockets whose heartbeats arrived together on one process
crashed some of them (1011). A blocking pool makes the extra callers wait
for a connection another one releases (milliseconds; at most
``REDIS_POOL_TIMEOUT_S``).
"""

from typing import Any

import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from videochat import storeerrors
from videochat.loops import per_loop


def _client() -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=settings.REDIS_POOL_TIMEOUT_S,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
        retry_on_timeout=True,
        connection_class=storeerrors.CountedAsyncConnection,
    )
    return aioredis.Redis.from_pool(pool)


get_redis = per_loop(_client)


class ChannelLayer(RedisChannelLayer):
    """channels_redis with a blocking pool (its own is redis-py's raising one)."""

    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" not in host:
            return super().create_pool(index)  # Sentinel: channels_redis' own
        return aioredis.BlockingConnectionPool.from_url(host.pop("address"), **host)
