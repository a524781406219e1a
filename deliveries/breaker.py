"""A circuit breaker per delivery target, its state shared by every worker in Redis.

Why not pybreaker's CircuitRedisStorage: its half-open state lets every worker
that sees the cool-down elapse call the target at once, and its counters and
state change in separate round trips. Here each transition is one Lua script,
so after a cool-down exactly one caller gets the probe (a lease, so a worker
killed mid-probe does not wedge the breaker) and the others keep waiting.

States: closed (calls go through; consecutive failures are counted), open
(no calls until ``opened_until``), half_open (one probe is out).
"""

from typing import Literal, TypedDict

from django.conf import settings

from .connections import sync_redis

KEY_PREFIX = "breaker:"

# KEYS[1] breaker hash; ARGV[1] probe lease seconds.
# Returns {allowed (0/1), wait seconds (string), state}.
_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, '0', state} end
if state == 'open' then
  local until_ = tonumber(redis.call('HGET', KEYS[1], 'opened_until') or '0')
  if now < until_ then return {0, tostring(until_ - now), state} end
else
  local lease = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
  if now < lease then return {0, tostring(lease - now), state} end
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + tonumber(ARGV[1])))
return {1, '0', 'half_open'}
"""

# KEYS[1] breaker hash; ARGV[1] fail max, ARGV[2] cool-down seconds. Returns the new state.
_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_failure_at', tostring(now))
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'state', 'open',
             'opened_until', tostring(now + tonumber(ARGV[2])), 'opened_at', tostring(now))
  redis.call('HINCRBY', KEYS[1], 'trips', 1)
  return 'open'
end
return state
"""

_SUCCESS = """
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
redis.call('HDEL', KEYS[1], 'opened_until', 'probe_until')
return 'closed'
"""

State = Literal["closed", "open", "half_open"]


class Permit(TypedDict):
    allowed: bool
    wait_s: float
    state: State


class BreakerInfo(TypedDict):
    target: str
    state: State
    failures: int
    trips: int
    open_for_s: float


def _key(target: str) -> str:
    return KEY_PREFIX + target


def breaker_allow(*, target: str) -> Permit:
    """May we call ``target`` now? In half_open, True for exactly one caller."""
    lease = settings.DELIVERY_HTTP_TIMEOUT_S + 5
    allowed, wait, state = sync_redis().eval(_ALLOW, 1, _key(target), lease)
    return Permit(allowed=bool(allowed), wait_s=float(wait), state=state)


def breaker_record_failure(*, target: str) -> State:
    return sync_redis().eval(
        _FAILURE, 1, _key(target), settings.BREAKER_FAIL_MAX, settings.BREAKER_COOLDOWN_S
    )


def breaker_record_success(*, target: str) -> State:
    return sync_redis().eval(_SUCCESS, 1, _key(target))


def breaker_reset(*, target: str) -> None:
    sync_redis().delete(_key(target))


def breaker_info(*, target: str) -> BreakerInfo:
    r = sync_redis()
    raw = r.hgetall(_key(target))
    open_for = 0.0
    if raw.get("state") == "open":
        secs, micros = r.time()
        open_for = max(0.0, float(raw.get("opened_until", 0)) - (secs + micros / 1e6))
    return BreakerInfo(
        target=target,
        state=raw.get("state", "closed"),  # type: ignore[typeddict-item]
        failures=int(raw.get("failures", 0)),
        trips=int(raw.get("trips", 0)),
        open_for_s=round(open_for, 1),
    )


def breaker_list() -> list[BreakerInfo]:
    r = sync_redis()
    targets = sorted(k[len(KEY_PREFIX) :] for k in r.scan_iter(match=KEY_PREFIX + "*", count=500))
    return [breaker_info(target=t) for t in targets]
