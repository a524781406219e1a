"""A circuit breaker per delivery target, its state shared by every worker in Redis.

Why not pybreaker's CircuitRedisStorage: its half-open state lets every worker
that sees the cool-down elapse call the target at once, and its counters and
state change in separate round trips. Here each transition is one Lua script,
so after a cool-down exactly one caller gets the probe (a lease, so a worker
killed mid-probe does not wedge the breaker) and the others keep waiting.

States: closed (calls go through; consecutive failures are counted), open
(no calls until ``opened_until``), half_open (one probe is out).

A refusal is not an attempt: the delivery pipeline keeps the delivery's retry
budget and only bounds the time it waits (DELIVERY_BREAKER_WAIT_MAX_S).
"""

from typing import Literal, TypedDict

from django.conf import settings

from .connections import sync_redis

KEY_PREFIX = "breaker:"

# Lua functions shared by the breaker's own scripts and the delivery
# pipeline's (deliveries/pipeline.py), so a whole attempt's bookkeeping is one
# round trip. ``now`` is Redis time, the one clock every worker agrees on.
LUA_LIB = """
local function lua_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end

-- returns allowed (0/1), wait seconds, state
local function breaker_allow(key, lease, cooldown, now)
  local state = redis.call('HGET', key, 'state') or 'closed'
  if state == 'closed' then return 1, 0, state end
  if state == 'open' then
    local until_ = tonumber(redis.call('HGET', key, 'opened_until') or '0')
    if now < until_ then return 0, until_ - now, state end
  else
    -- The lease only bounds a probe whose worker died; a live probe ends in
    -- milliseconds and either closes the breaker or opens it for a cool-down,
    -- so waiters look again after at most one cool-down, not the whole lease.
    local probe = tonumber(redis.call('HGET', key, 'probe_until') or '0')
    if now < probe then return 0, math.min(probe - now, cooldown), state end
  end
  redis.call('HSET', key, 'state', 'half_open', 'probe_until', tostring(now + lease))
  return 1, 0, 'half_open'
end

local function breaker_failure(key, fail_max, cooldown, now)
  local state = redis.call('HGET', key, 'state') or 'closed'
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'last_failure_at', tostring(now))
  if state == 'half_open' or (state == 'closed' and failures >= fail_max) then
    redis.call('HSET', key, 'state', 'open', 'opened_until', tostring(now + cooldown),
               'opened_at', tostring(now))
    redis.call('HINCRBY', key, 'trips', 1)
    return 'open'
  end
  return state
end

local function breaker_success(key)
  if redis.call('HGET', key, 'state') ~= 'closed' or
     tonumber(redis.call('HGET', key, 'failures') or '0') ~= 0 then
    redis.call('HSET', key, 'state', 'closed', 'failures', 0)
    redis.call('HDEL', key, 'opened_until', 'probe_until')
  end
  return 'closed'
end
"""

# KEYS[1] breaker hash; ARGV[1] probe lease seconds, ARGV[2] cool-down seconds.
_ALLOW = (
    LUA_LIB
    + """
local allowed, wait, state = breaker_allow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), lua_now())
return {allowed, tostring(wait), state}
"""
)

# KEYS[1] breaker hash; ARGV[1] fail max, ARGV[2] cool-down seconds. Returns the new state.
_FAILURE = (
    LUA_LIB
    + """
return breaker_failure(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), lua_now())
"""
)

_SUCCESS = LUA_LIB + "\nreturn breaker_success(KEYS[1])\n"

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
    allowed, wait, state = sync_redis().eval(
        _ALLOW, 1, _key(target), lease, settings.BREAKER_COOLDOWN_S
    )
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
