"""One attempt of one delivery: idempotency, breaker, send, backoff, dead letter.

A delivery is (id, kind, target, payload). Its state lives in Redis, shared by
every worker:

    dlv:<id>      hash   status pending|delivered|dead, run_attempts, inflight,
                         breaker_wait_since, breaker_refusals
    dlv:<id>:log  list   one JSON entry per attempt (the dead letter's history)

Celery gives at-least-once execution (acks_late, reject_on_worker_lost), so
the same delivery may run twice: a per-delivery lock and the terminal status
make the second run a no-op. Receivers also get the delivery id in a header to
drop the rare duplicate POST (a worker killed after the receiver answered).
"""

import json
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

import structlog
from django.conf import settings

from videochat import metrics

from . import breaker, deadletters
from .connections import sync_redis
from .senders import SENDERS, Sender, SendError

log = structlog.get_logger(__name__)

STATE_TTL_S = 14 * 86400
STATS_TTL_S = 8 * 86400
_WORKER = f"{socket.gethostname()}:{os.getpid()}"


class Outcome(TypedDict):
    status: Literal["delivered", "retry", "waiting", "dead", "done_before", "busy"]
    countdown: float


def state_key(delivery_id: str) -> str:
    return f"dlv:{delivery_id}"


def log_key(delivery_id: str) -> str:
    return f"dlv:{delivery_id}:log"


def backoff_s(*, attempt: int) -> float:
    """Delay after the ``attempt``-th failure: exponential, capped, with jitter.

    The jitter takes up to DELIVERY_RETRY_JITTER of the delay off, so a burst
    of failures against one target does not come back in lock step.
    """
    delay = min(
        settings.DELIVERY_RETRY_MAX_S, settings.DELIVERY_RETRY_BASE_S * 2 ** max(0, attempt - 1)
    )
    return delay * (1 - settings.DELIVERY_RETRY_JITTER * random.random())


def breaker_wait_countdown_s(*, wait_s: float) -> float:
    """How long a delivery refused by an open breaker sleeps before it asks again.

    At least ``wait_s`` (until the cool-down ends), plus a random part of one
    cool-down: refused deliveries wake spread out, so the one probe does not
    meet a herd that the breaker refuses all over again in the same instant.
    """
    return wait_s + settings.BREAKER_COOLDOWN_S * random.random()


def delivery_status(*, delivery_id: str) -> dict[str, Any]:
    r = sync_redis()
    state = r.hgetall(state_key(delivery_id))
    attempts = [json.loads(a) for a in r.lrange(log_key(delivery_id), 0, -1)]
    return {"status": state.get("status"), "state": state, "attempts": attempts}


def delivery_reset_for_replay(*, delivery_id: str, attempts: list[dict[str, Any]]) -> None:
    """Give a dead-lettered delivery a fresh retry budget, keeping its history."""
    r = sync_redis()
    with r.pipeline() as pipe:
        pipe.delete(state_key(delivery_id), log_key(delivery_id))
        pipe.hset(state_key(delivery_id), mapping={"status": "pending", "run_attempts": 0})
        for a in attempts:
            at = a.get("at")
            if isinstance(at, datetime):
                at = at.isoformat()
            pipe.rpush(log_key(delivery_id), json.dumps({**a, "at": at}))
        pipe.expire(state_key(delivery_id), STATE_TTL_S)
        pipe.expire(log_key(delivery_id), STATE_TTL_S)
        pipe.execute()


def _stats_key() -> str:
    return "dlv:stats:" + time.strftime("%Y%m%d%H", time.gmtime())


def _stat(kind: str, outcome: str) -> None:
    r = sync_redis()
    with r.pipeline(transaction=False) as pipe:
        pipe.hincrby(_stats_key(), f"{kind}:{outcome}", 1)
        pipe.expire(_stats_key(), STATS_TTL_S)
        pipe.execute()


# One round trip to start an attempt. KEYS: state, log, lock, breaker.
# ARGV: lock token, lock ttl ms, max attempts, probe lease s, started (ISO),
# cool-down s, breaker wait max s, state ttl s.
# Returns {verdict, run_attempts, detail}: verdict busy | done | exhausted |
# refused (breaker open: detail = wait s; lock released) | gave_up (waited
# detail s for the breaker; lock kept for the dead letter) | go (the call may
# be made; inflight is set).
_BEGIN = (
    breaker.LUA_LIB
    + """
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {'busy', 0, '0'}
end
local st = redis.call('HMGET', KEYS[1], 'status', 'run_attempts', 'inflight')
if st[1] == 'delivered' or st[1] == 'dead' then
  redis.call('DEL', KEYS[3])
  return {'done', 0, '0'}
end
local runs = tonumber(st[2] or '0')
if st[3] then
  -- The previous attempt's worker died mid-call (SIGKILL, OOM): that attempt
  -- counts, and the history says what happened.
  redis.call('RPUSH', KEYS[2], cjson.encode({at = st[3], error = 'worker lost during the attempt'}))
  runs = runs + 1
end
redis.call('HSET', KEYS[1], 'status', 'pending', 'run_attempts', runs)
redis.call('HDEL', KEYS[1], 'inflight')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
if runs >= tonumber(ARGV[3]) then return {'exhausted', runs, '0'} end
local now = lua_now()
local allowed, wait = breaker_allow(KEYS[4], tonumber(ARGV[4]), tonumber(ARGV[6]), now)
if allowed == 0 then
  -- Not an attempt: the budget is for the target's answers, and a refusal
  -- says nothing about this delivery. What bounds it is time: the clock runs
  -- from the first refusal since the last call.
  redis.call('HSETNX', KEYS[1], 'breaker_wait_since', tostring(now))
  redis.call('HINCRBY', KEYS[1], 'breaker_refusals', 1)
  local waited = now - tonumber(redis.call('HGET', KEYS[1], 'breaker_wait_since'))
  if waited >= tonumber(ARGV[7]) then return {'gave_up', runs, tostring(waited)} end
  redis.call('DEL', KEYS[3])
  return {'refused', runs, tostring(wait)}
end
redis.call('HDEL', KEYS[1], 'breaker_wait_since')
redis.call('HSET', KEYS[1], 'inflight', ARGV[5])
return {'go', runs, '0'}
"""
)

# One round trip to finish an attempt. KEYS: state, log, lock, breaker, stats.
# ARGV: lock token, entry JSON, delivered (0/1), breaker effect
# (success|failure|none), fail max, cool-down s, state ttl s, kind,
# retryable (0/1), max attempts. Returns {verdict, run_attempts}: delivered |
# retry (lock released) | dead (lock kept: the caller writes the dead letter).
_FINISH = (
    breaker.LUA_LIB
    + """
redis.call('RPUSH', KEYS[2], ARGV[2])
local runs = redis.call('HINCRBY', KEYS[1], 'run_attempts', 1)
redis.call('HDEL', KEYS[1], 'inflight')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[7]))
if ARGV[4] == 'success' then breaker_success(KEYS[4])
elseif ARGV[4] == 'failure' then
  breaker_failure(KEYS[4], tonumber(ARGV[5]), tonumber(ARGV[6]), lua_now())
end
local verdict
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'delivered')
  redis.call('HINCRBY', KEYS[5], ARGV[8] .. ':delivered', 1)
  verdict = 'delivered'
else
  redis.call('HINCRBY', KEYS[5], ARGV[8] .. ':failed_attempt', 1)
  if ARGV[9] == '1' and runs < tonumber(ARGV[10]) then verdict = 'retry' else verdict = 'dead' end
end
redis.call('EXPIRE', KEYS[5], 691200)
if verdict ~= 'dead' and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return {verdict, runs}
"""
)

_scripts: dict[int, tuple[Any, Any]] = {}


def _lua() -> tuple[Any, Any]:
    r = sync_redis()
    found = _scripts.get(id(r))
    if found is None:
        found = (r.register_script(_BEGIN), r.register_script(_FINISH))
        _scripts.clear()
        _scripts[id(r)] = found
    return found


@dataclass(frozen=True)
class _Attempt:
    """What one attempt works with: the delivery, its Redis keys and its lock token."""

    delivery_id: str
    kind: str
    target: str
    payload: dict[str, Any]
    created_at: str | None
    breaker_target: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    lock_ttl: float = field(default_factory=lambda: settings.DELIVERY_HTTP_TIMEOUT_S + 5)
    started: str = field(default_factory=lambda: deadletters.now().isoformat())

    @property
    def lock_key(self) -> str:
        return f"dlv:{self.delivery_id}:lock"

    @property
    def keys(self) -> list[str]:
        """The scripts' first four keys: state, log, lock, breaker."""
        return [
            state_key(self.delivery_id),
            log_key(self.delivery_id),
            self.lock_key,
            breaker.KEY_PREFIX + self.breaker_target,
        ]


class _Call(TypedDict):
    entry: dict[str, Any]  # the attempt's line in the history
    delivered: bool
    retryable: bool
    effect: Literal["success", "failure", "none"]  # on the target's breaker


def delivery_attempt(
    *,
    delivery_id: str,
    kind: str,
    target: str,
    payload: dict[str, Any],
    created_at: str | None = None,
) -> Outcome:
    """Run one attempt; the caller (a Celery task) schedules the retry.

    Three steps: decide (may the call be made?), call the target, record the
    answer. Redis bookkeeping is two Lua scripts (decide, record) around the
    call, so the pipeline costs two round trips beyond the call itself. Every
    way to give up (budget spent, breaker open too long, a last failure) ends
    in the one dead-letter write at the bottom.
    """
    sender = SENDERS[kind]
    attempt = _Attempt(
        delivery_id=delivery_id,
        kind=kind,
        target=target,
        payload=payload,
        created_at=created_at,
        breaker_target=sender.breaker_target(target=target, payload=payload),
    )
    verdict, detail = _decide(attempt)
    if verdict == "busy":
        # Another worker has it (a redelivered duplicate, or a killed worker's
        # lock that has not expired yet): look again once the lock would expire.
        return Outcome(status="busy", countdown=attempt.lock_ttl)
    if verdict == "done":
        return Outcome(status="done_before", countdown=0)
    if verdict == "refused":
        return _breaker_wait(attempt, wait_s=float(detail))
    # From here this worker holds the lock. The record step releases it
    # unless the delivery is dead; on the way to the dead letters, or if
    # anything fails, it is released here rather than left to expire.
    try:
        last_error = None
        if verdict == "gave_up":
            last_error = (
                f"circuit open for {attempt.breaker_target}: waited {float(detail):.0f} s "
                "for it to close, not called"
            )
        elif verdict == "go":
            call = _call(attempt, sender)
            recorded, runs = _record(attempt, call)
            if recorded == "delivered":
                return Outcome(status="delivered", countdown=0)
            if recorded == "retry":
                return _retry_later(attempt, runs=runs, error=call["entry"]["error"])
        # exhausted (before the call), gave_up, or recorded dead
        _dead_letter(attempt, last_error=last_error)
    except BaseException:
        _release(attempt)
        raise
    _release(attempt)
    return Outcome(status="dead", countdown=0)


def _decide(attempt: _Attempt) -> tuple[str, str]:
    """The begin script's verdict (see _BEGIN) and its detail."""
    begin, _ = _lua()
    verdict, _runs, detail = begin(
        keys=attempt.keys,
        args=[
            attempt.token,
            int(attempt.lock_ttl * 1000),
            settings.DELIVERY_MAX_ATTEMPTS,
            attempt.lock_ttl,
            attempt.started,
            settings.BREAKER_COOLDOWN_S,
            settings.DELIVERY_BREAKER_WAIT_MAX_S,
            STATE_TTL_S,
        ],
    )
    return str(verdict), str(detail)


def _call(attempt: _Attempt, sender: Sender) -> _Call:
    """Call the target once; every failure becomes a SendError's verdict."""
    entry: dict[str, Any] = {"at": attempt.started, "worker": _WORKER}
    t0 = time.monotonic()
    try:
        try:
            result = sender.send(
                delivery_id=attempt.delivery_id, target=attempt.target, payload=attempt.payload
            )
        except SendError:
            raise
        except Exception as exc:
            # A bug or a misconfiguration, not the target's fault: keep
            # retrying (a deploy may fix it), then dead-letter; never drop.
            log.exception("delivery.unexpected_error", delivery=attempt.delivery_id)
            raise SendError(
                f"{type(exc).__name__}: {exc}"[:300],
                retryable=True,
                counts_against_target=False,
            ) from exc
    except SendError as exc:
        entry.update(error=exc.message, status_code=exc.status_code)
        call = _Call(
            entry=entry,
            delivered=False,
            retryable=exc.retryable,
            effect="failure" if exc.counts_against_target else "success",
        )
    else:
        entry.update(error=None, status_code=result.get("status_code"))
        call = _Call(entry=entry, delivered=True, retryable=True, effect="success")
    entry["duration_ms"] = round((time.monotonic() - t0) * 1000)
    return call


def _record(attempt: _Attempt, call: _Call) -> tuple[str, int]:
    """The finish script's verdict (delivered, retry, dead) and the attempts so far."""
    _, finish = _lua()
    verdict, runs = finish(
        keys=[*attempt.keys, _stats_key()],
        args=[
            attempt.token,
            json.dumps(call["entry"]),
            int(call["delivered"]),
            call["effect"],
            settings.BREAKER_FAIL_MAX,
            settings.BREAKER_COOLDOWN_S,
            STATE_TTL_S,
            attempt.kind,
            int(call["retryable"]),
            settings.DELIVERY_MAX_ATTEMPTS,
        ],
    )
    return str(verdict), int(runs)


def _breaker_wait(attempt: _Attempt, *, wait_s: float) -> Outcome:
    countdown = breaker_wait_countdown_s(wait_s=wait_s)
    log.info(
        "delivery.breaker_wait",
        delivery=attempt.delivery_id,
        target=attempt.breaker_target,
        countdown=round(countdown, 2),
    )
    return Outcome(status="waiting", countdown=countdown)


def _retry_later(attempt: _Attempt, *, runs: int, error: str | None) -> Outcome:
    countdown = backoff_s(attempt=runs)
    log.info(
        "delivery.retry",
        delivery=attempt.delivery_id,
        attempt=runs,
        countdown=round(countdown, 2),
        error=error,
    )
    return Outcome(status="retry", countdown=countdown)


def _dead_letter(attempt: _Attempt, *, last_error: str | None) -> None:
    """Write the one dead letter (history from Redis) and mark the delivery dead."""
    r = sync_redis()
    history = [json.loads(a) for a in r.lrange(log_key(attempt.delivery_id), 0, -1)]
    doc = deadletters.deadletter_build(
        delivery_id=attempt.delivery_id,
        kind=attempt.kind,
        target=attempt.target,
        payload=attempt.payload,
        attempts=history,
        created_at=deadletters._parse_dt(attempt.created_at) if attempt.created_at else None,
        last_error=last_error,
    )
    where = deadletters.deadletter_record(doc=doc)
    r.hset(state_key(attempt.delivery_id), "status", "dead")
    _stat(attempt.kind, "dead")
    metrics.dead_letter_written(kind=attempt.kind)
    log.warning(
        "delivery.dead",
        delivery=attempt.delivery_id,
        kind=attempt.kind,
        target=attempt.target,
        where=where,
    )


def _release(attempt: _Attempt) -> None:
    # Compare-and-delete: never drop a lock that expired and was taken by another worker.
    sync_redis().eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0",
        1,
        attempt.lock_key,
        attempt.token,
    )
