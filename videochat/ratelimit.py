"""Token buckets in Redis, so a limit holds across every server instance.

Several buckets (and one plain read riding along, like a room's moderation
revision) are checked in one script call: one call per frame however many
limits apply to it. The script runs by its SHA, so a frame sends no script
text; after a Redis restart or flush it is loaded again. The calls made in
one turn of the event loop (every socket's frames that arrived together) go
to Redis as one pipeline: redis-py's per-call CPU cost is far higher for a
lone call than inside a pipeline, and the frame guard is on every frame of
every socket (bench/chat_fanout.py: ~10,500 -> ~12,600 deliveries/s on one
process, bench/RESULTS.md).
"""

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from videochat.errors import RateLimited
from videochat.loops import per_loop
from videochat.redis import get_redis

# KEYS[1..n] buckets, KEYS[n+1] (optional) a key to GET; ARGV[1] = n,
# ARGV[2] = m, then rate (tokens/s), burst, cost per bucket. The first m
# buckets are all or nothing: tokens are spent only when every one has
# enough. The other n - m (a frame type's own limit) are charged the same way
# only when the first m were, and their refusal leaves the first m spent.
# Redis' own clock keeps instances consistent. Returns {allowed,
# retry_after_ms, value, then_allowed, then_retry_after_ms}.
_BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
local function charge(first, last)
  local state = {}
  local wait = 0
  local refused = false
  for i = first, last do
    local rate = tonumber(ARGV[3 * i]) / 1000
    local burst = tonumber(ARGV[3 * i + 1])
    local cost = tonumber(ARGV[3 * i + 2])
    local saved = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
    local tokens = tonumber(saved[1]) or burst
    local ts = tonumber(saved[2]) or now
    tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
    if tokens < cost then
      local w = math.ceil((cost - tokens) / rate)
      wait = math.max(wait, w)
      refused = true
    end
    state[i] = {tokens, rate, burst, cost}
  end
  if not refused then
    for i = first, last do
      local s = state[i]
      redis.call('HSET', KEYS[i], 'tokens', s[1] - s[4], 'ts', now)
      redis.call('PEXPIRE', KEYS[i], math.ceil(s[3] / s[2]) + 1000)
    end
  end
  return refused, wait
end
local refused, wait = charge(1, m)
local then_refused, then_wait = false, 0
if not refused and m < n then
  then_refused, then_wait = charge(m + 1, n)
end
local value = false
if #KEYS > n then
  value = redis.call('GET', KEYS[n + 1])
end
return {refused and 0 or 1, wait, value, then_refused and 0 or 1, then_wait}
"""
_BUCKETS_SHA = hashlib.sha1(_BUCKETS.encode()).hexdigest()  # noqa: S324 - Redis' script id


@dataclass(frozen=True)
class Limit:
    name: str
    rate: float  # tokens per second
    burst: int


async def hit_many(
    buckets: Sequence[tuple[Limit, str]], *, cost: int = 1, read: str | None = None
) -> str | None:
    """Spend ``cost`` from every (limit, key) bucket, or none of them and raise RateLimited.

    Returns the value of the key ``read`` (None if unset or not asked),
    fetched in the same round trip.
    """
    value, _ = await hit_then(buckets, cost=cost, read=read)
    return value


async def hit_then(
    buckets: Sequence[tuple[Limit, str]],
    then: Sequence[tuple[Limit, str]] = (),
    *,
    cost: int = 1,
    read: str | None = None,
) -> tuple[str | None, RateLimited | None]:
    """``hit_many(buckets)``, and once those are spent, ``then``'s buckets alike.

    One round trip. Raises RateLimited when ``buckets`` refuse (nothing
    spent); returns (the value of ``read``, the refusal of ``then`` or None).
    A refused ``then`` leaves ``buckets`` spent: a frame over its type's own
    limit still counted against its address.
    """
    limits = [*buckets, *then]
    keys = [f"rl:{limit.name}:{key}" for limit, key in limits]
    if read is not None:
        keys.append(read)
    args: list[float | int] = [len(limits), len(buckets)]
    for limit, _ in limits:
        args += [limit.rate, limit.burst, cost]
    allowed, wait_ms, value, then_allowed, then_wait_ms = await _batcher().submit(keys, args)
    if not int(allowed):
        raise RateLimited(retry_after=int(wait_ms) / 1000)
    refused = None if int(then_allowed) else RateLimited(retry_after=int(then_wait_ms) / 1000)
    return value, refused


class _Batcher:
    """Script calls made in the same event-loop turn, sent as one pipeline."""

    def __init__(self) -> None:
        self.pending: list[tuple[list[str], list[Any], asyncio.Future]] = []
        self.sending: set[asyncio.Task] = set()

    def submit(self, keys: list[str], args: list[Any]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((keys, args, future))
        if len(self.pending) == 1:
            # Runs after the callbacks already ready in this turn: the frames
            # that arrived together join, and nothing waits longer than a turn.
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _send(self, batch: list[tuple[list[str], list[Any], asyncio.Future]]) -> None:
        redis = get_redis()
        try:
            for attempt in (1, 2):
                async with redis.pipeline(transaction=False) as pipe:
                    for keys, args, _ in batch:
                        pipe.evalsha(_BUCKETS_SHA, len(keys), *keys, *args)
                    results = await pipe.execute(raise_on_error=False)
                if attempt == 2 or not any(isinstance(r, NoScriptError) for r in results):
                    break
                await redis.script_load(_BUCKETS)  # after a Redis restart or flush
        except Exception as exc:  # noqa: BLE001 - every caller gets it
            results = [exc] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


_batcher = per_loop(_Batcher)


async def hit(limit: Limit, key: str, cost: int = 1) -> None:
    """Spend ``cost`` tokens from ``limit`` for ``key`` or raise RateLimited."""
    await hit_many([(limit, key)], cost=cost)
