"""Per-process sync clients for Celery workers, rq jobs, commands and the admin.

Created lazily so a Celery prefork child opens its own sockets after the fork.
"""

import os
import threading

import redis
from django.conf import settings
from pymongo import MongoClient

from videochat import storeerrors

_lock = threading.Lock()
_redis: dict[int, redis.Redis] = {}
_mongo: dict[tuple[int, str], MongoClient] = {}


def sync_redis() -> redis.Redis:
    pid = os.getpid()
    client = _redis.get(pid)
    if client is None:
        with _lock:
            client = _redis.get(pid) or redis.Redis.from_url(
                settings.REDIS_URL,
                decode_responses=True,
                socket_connect_timeout=2,
                socket_timeout=5,
                health_check_interval=10,
                connection_class=storeerrors.CountedConnection,
            )
            _redis[pid] = client
    return client


def mongo_client() -> MongoClient:
    key = (os.getpid(), settings.MONGODB_URI)
    client = _mongo.get(key)
    if client is None:
        with _lock:
            client = _mongo.get(key)
            if client is None:
                # Short timeouts: a dead letter that cannot be written goes to
                # the Redis spool rather than holding a worker for 30 s.
                client = MongoClient(
                    settings.MONGODB_URI,
                    tz_aware=True,
                    serverSelectionTimeoutMS=2000,
                    connectTimeoutMS=2000,
                    socketTimeoutMS=5000,
                )
                _mongo[key] = client
    return client
