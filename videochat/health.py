"""Reachability of the stores the product needs (for load balancers and start-up).

The public ``/healthz`` says only ok (200) or unavailable (503): error texts
name hosts, ports and driver versions, which are for operators. Staff get the
per-store details on the same URL; ``manage.py checkservices`` prints them.

Clients are made once per process and URL and reused: a load balancer probing
every second otherwise opened a Redis connection pool and a MongoDB client
(with its monitor threads) per probe.
"""

import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from pymongo import MongoClient

from videochat.redis import SharedClient

TIMEOUT_S = 2.0

_lock = threading.Lock()
_mongo_clients: dict[str, MongoClient] = {}


# Keyed by configuration: a test or a reload may point elsewhere.
_redis_client = SharedClient(socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)


def _mongo_client() -> MongoClient:
    uri = settings.MONGODB_URI
    with _lock:
        client = _mongo_clients.get(uri)
        if client is None:
            client = MongoClient(
                uri,
                serverSelectionTimeoutMS=int(TIMEOUT_S * 1000),
                connectTimeoutMS=int(TIMEOUT_S * 1000),
            )
            _mongo_clients[uri] = client
        return client


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    _redis_client().ping()


def _mongodb() -> None:
    _mongo_client().admin.command("ping")


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "redis": _redis,
    "mongodb": _mongodb,
}


def check_all() -> dict[str, str]:
    """``{"database": "ok", "redis": "error: ...", ...}``"""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
        else:
            results[name] = "ok"
    return results


def healthz(request: HttpRequest) -> JsonResponse:
    results = check_all()
    healthy = all(v == "ok" for v in results.values())
    body: dict[str, object] = {"status": "ok" if healthy else "unavailable"}
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        body["checks"] = results
    return JsonResponse(body, status=200 if healthy else 503)
