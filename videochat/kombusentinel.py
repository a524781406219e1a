"""kombu's Redis Sentinel transport for Celery, with one failure turned into the
connection error it is (``CELERY_BROKER_TRANSPORT`` with ``REDIS_SENTINELS``).

On a failover Celery closes the broker connection, and kombu forgets the
connection's settings (the transport's ``client`` becomes None) before every
channel is closed. A channel closed after that, holding unacknowledged tasks,
builds a new pool to restore them and fails on the missing settings with
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which is no
connection error: Celery's worker stopped ("Unrecoverable error") instead of
reconnecting (bench/RESULTS.md, Redis Sentinel failover). Raised as a connection
error, kombu's close ignores it, the worker reconnects to the new primary, and the
unacknowledged tasks are restored by the unacked sweep after
``CELERY_VISIBILITY_TIMEOUT``, as when the restore fails against a dead primary.
"""

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.SentinelChannel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("The broker connection is closed.")
        return super()._connparams(asynchronous)


class Transport(kombu_redis.SentinelTransport):
    Channel = Channel
