"""Chat limits; the rate is read from the environment once, a bad value fails at import."""

from videochat import ratelimit

# Counted in characters (code points), after trimming surrounding whitespace.
BODY_MAX_CHARS = 4000
CLIENT_ID_MAX_CHARS = 64
PAGE_MAX = 100
# Per user (per guest membership), shared by every server through Redis.
CHAT_LIMIT = ratelimit.Limit.from_env("chat", "CHAT_RATE", rate=5.0, burst=20)
