"""The per-process MongoDB client (pymongo), shared by every app that keeps documents.

Dead letters (deliveries/deadletters.py), load samples (scaling/samples.py) and
call-quality telemetry (rooms/telemetry.py) read and write through it. Created
lazily and per process id, so a Celery prefork child opens its own sockets after
the fork.
"""

import os
import threading
from collections.abc import Callable

from django.conf import settings
from pymongo import MongoClient
from pymongo.collection import Collection

_lock = threading.Lock()
_mongo: dict[tuple[int, str], MongoClient] = {}
# (server, database, collection) whose indexes this process has ensured.
_indexed: set[tuple[str, str, str]] = set()


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


def indexed_collection(name: str, ensure: Callable[[Collection], None]) -> Collection:
    """The collection ``name`` of MONGODB_DB, with ``ensure(col)`` run the first time
    this process uses it on that server and database (create_index is idempotent, but
    a round trip per write is not free)."""
    col = mongo_client()[settings.MONGODB_DB][name]
    key = (settings.MONGODB_URI, settings.MONGODB_DB, name)
    if key not in _indexed:
        ensure(col)
        _indexed.add(key)
    return col
