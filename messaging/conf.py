"""Chat limits (the rate is a setting: CHAT_RATE_PER_S, CHAT_RATE_BURST)."""

from django.conf import settings

from videochat import ratelimit

# Counted in characters (code points), after trimming surrounding whitespace.
BODY_MAX_CHARS = 4000
CLIENT_ID_MAX_CHARS = 64
PAGE_MAX = 100
# Per user (per guest membership), shared by every server through Redis.
CHAT_LIMIT = ratelimit.Limit("chat", rate=settings.CHAT_RATE_PER_S, burst=settings.CHAT_RATE_BURST)
