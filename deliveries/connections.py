"""Per-process sync clients for Celery workers, rq jobs, commands and the admin.

Created lazily so a Celery prefork child opens its own sockets after the fork.
The MongoDB client lives in videochat/mongo.py (rooms' telemetry uses it too).
"""

from videochat.mongo import mongo_client
from videochat.redis import SharedClient

__all__ = ["mongo_client", "sync_redis"]

sync_redis = SharedClient(decode_responses=True, health_check_interval=10)
