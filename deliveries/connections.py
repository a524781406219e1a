"""Per-process sync clients for Celery workers, rq jobs, commands and the admin.

Created lazily so a Celery prefork child opens its own sockets after the fork.
"""

import os
import threading

from django.conf import settings
from pymongo import MongoClient

from videochat.redis import SharedClient

_lock = threading.Lock()
_mongo: dict[tuple[int, str], MongoClient] = {}


sync_redis = SharedClient(decode_responses=True, health_check_interval=10)


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
