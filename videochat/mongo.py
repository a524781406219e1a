"""The per-process MongoDB client (pymongo), shared by every app that keeps documents.

Dead letters (deliveries/deadletters.py), load samples (scaling/samples.py) and
call-quality telemetry (rooms/telemetry.py) read and write through it. Created
lazily and per process id, so a Celery prefork child opens its own sockets after
the fork.
"""

import os
import threading

from django.conf import settings
from pymongo import MongoClient

_lock = threading.Lock()
_mongo: dict[tuple[int, str], MongoClient] = {}


def mongo_client() -> MongoClient:
    key = (os.getpid(), settings.MONGODB_URI)
    client = _mongo.get(key)
    if client is None:
        with _lock:
            client = _mongo.get(key)
            if client is None:
                # Short timeouts: a dead letter that cannot be written goes to
                # the Redis spool, and a telemetry batch is counted as failed,
                # rather than holding a worker or the writer thread for 30 s.
                client = MongoClient(
                    settings.MONGODB_URI,
                    tz_aware=True,
                    serverSelectionTimeoutMS=2000,
                    connectTimeoutMS=2000,
                    socketTimeoutMS=5000,
                )
                _mongo[key] = client
    return client
