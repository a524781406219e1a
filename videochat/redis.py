"""One asyncio Redis client per event loop (tests run many loops)."""

import redis.asyncio as aioredis
from django.conf import settings

from videochat import storeerrors
from videochat.loops import per_loop


def _client() -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
        retry_on_timeout=True,
        connection_class=storeerrors.CountedAsyncConnection,
    )


get_redis = per_loop(_client)
