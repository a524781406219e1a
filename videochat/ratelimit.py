"""Token buckets in Redis, so a limit holds across every server instance."""

from dataclasses import dataclass

from videochat.errors import RateLimited
from videochat.redis import get_redis

# KEYS[1] bucket; ARGV rate (tokens/s), burst, cost. Redis' own clock keeps
# instances consistent. Returns {allowed, retry_after_ms}.
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return {allowed, wait}
"""


@dataclass(frozen=True)
class Limit:
    name: str
    rate: float  # tokens per second
    burst: int


async def hit(limit: Limit, key: str, cost: int = 1) -> None:
    """Spend ``cost`` tokens from ``limit`` for ``key`` or raise RateLimited."""
    allowed, wait_ms = await get_redis().eval(
        _BUCKET, 1, f"rl:{limit.name}:{key}", limit.rate, limit.burst, cost
    )
    if not int(allowed):
        raise RateLimited(retry_after=int(wait_ms) / 1000)
