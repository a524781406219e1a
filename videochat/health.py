"""Reachability of the stores the product needs (for load balancers and start-up)."""

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from pymongo import MongoClient

TIMEOUT_S = 2.0


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=TIMEOUT_S).ping()


def _mongodb() -> None:
    client: MongoClient = MongoClient(
        settings.MONGODB_URI, serverSelectionTimeoutMS=int(TIMEOUT_S * 1000)
    )
    try:
        client.admin.command("ping")
    finally:
        client.close()


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
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results},
        status=200 if healthy else 503,
    )
