"""Per-address limits for page actions that create things (accounts, guests).

The socket's limits (videochat.ratelimit) are async token buckets; these are
for sync views: a fixed window per client address in Redis, shared by every
server. A window is coarse but enough against a script creating accounts or
guests in bulk; a person never meets it.
"""

import redis
import structlog
from django.http import HttpRequest

from videochat.errors import RateLimited
from videochat.redis import SharedClient

log = structlog.get_logger(__name__)

_redis = SharedClient()


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR is the client's own address: daphne sets it from
    # X-Forwarded-For only when told to (USE_X_FORWARDED_FOR, videochat.webpool).
    return request.META.get("REMOTE_ADDR") or "unknown"


def address_limit_hit(*, name: str, address: str, limit: int, window_s: int) -> None:
    """Count one action of ``name`` from ``address``; RateLimited past ``limit`` per window."""
    key = f"al:{name}:{address}"
    try:
        with _redis().pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
            pipe.ttl(key)
            count, _, ttl = pipe.execute()
    except redis.RedisError as exc:
        # Open, not a 500: a person signing up while Redis restarts gets in;
        # the limit is against bulk creation, and resumes with Redis.
        log.warning("address_limit.unavailable", limit=name, error=repr(exc))
        return
    if int(count) > limit:
        raise RateLimited(
            retry_after=max(1, int(ttl)),
            message="Too many from your network; try again later.",
        )
