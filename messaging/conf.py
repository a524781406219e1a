"""Chat limits, read from the environment once; bad values fail at import."""

import os

from django.core.exceptions import ImproperlyConfigured

from videochat import ratelimit


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be positive, got {raw!r}")
    return value


# Counted in characters (code points), after trimming surrounding whitespace.
BODY_MAX_CHARS = 4000
CLIENT_ID_MAX_CHARS = 64
PAGE_MAX = 100
# Per user (per guest membership), shared by every server through Redis.
CHAT_LIMIT = ratelimit.Limit(
    "chat",
    rate=_env_float("CHAT_RATE_PER_S", 5.0),
    burst=int(_env_float("CHAT_RATE_BURST", 20)),
)
