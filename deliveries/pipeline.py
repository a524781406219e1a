"""One attempt of one delivery: idempotency, breaker, send, backoff, dead letter.

A delivery is (id, kind, target, payload). Its state lives in Redis, shared by
every worker:

    dlv:<id>      hash   status pending|delivered|dead, run_attempts, inflight
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
from typing import Any, Literal, TypedDict

import structlog
from django.conf import settings
from redis.exceptions import LockError

from . import breaker, deadletters
from .connections import sync_redis
from .senders import SENDERS, SendError

log = structlog.get_logger(__name__)

STATE_TTL_S = 14 * 86400
_WORKER = f"{socket.gethostname()}:{os.getpid()}"


class Outcome(TypedDict):
    status: Literal["delivered", "retry", "dead", "done_before", "busy"]
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
            pipe.rpush(
                log_key(delivery_id),
                json.dumps({**a, "at": at.isoformat() if hasattr(at, "isoformat") else at}),
            )
        pipe.expire(state_key(delivery_id), STATE_TTL_S)
        pipe.expire(log_key(delivery_id), STATE_TTL_S)
        pipe.execute()


def _stat(kind: str, outcome: str) -> None:
    r = sync_redis()
    key = "dlv:stats:" + time.strftime("%Y%m%d%H", time.gmtime())
    with r.pipeline(transaction=False) as pipe:
        pipe.hincrby(key, f"{kind}:{outcome}", 1)
        pipe.expire(key, 8 * 86400)
        pipe.execute()


def _record_attempt(delivery_id: str, entry: dict[str, Any]) -> int:
    """Append to the history; returns the attempts made in this run."""
    r = sync_redis()
    with r.pipeline() as pipe:
        pipe.rpush(log_key(delivery_id), json.dumps(entry))
        pipe.hincrby(state_key(delivery_id), "run_attempts", 1)
        pipe.hdel(state_key(delivery_id), "inflight")
        pipe.expire(log_key(delivery_id), STATE_TTL_S)
        pipe.expire(state_key(delivery_id), STATE_TTL_S)
        _, run_attempts, *_ = pipe.execute()
    return int(run_attempts)


def _dead_letter(
    delivery_id: str, kind: str, target: str, payload: dict[str, Any], created_at: str | None
) -> None:
    attempts = [json.loads(a) for a in sync_redis().lrange(log_key(delivery_id), 0, -1)]
    doc = deadletters.deadletter_build(
        delivery_id=delivery_id,
        kind=kind,
        target=target,
        payload=payload,
        attempts=attempts,
        created_at=deadletters._parse_dt(created_at) if created_at else None,
    )
    where = deadletters.deadletter_record(doc=doc)
    if where == "spooled":
        # Import here: tasks imports this module.
        from .tasks import deadletter_spool_flush

        deadletter_spool_flush.apply_async(countdown=settings.DELIVERY_RETRY_BASE_S)
    sync_redis().hset(state_key(delivery_id), "status", "dead")
    _stat(kind, "dead")
    log.warning("delivery.dead", delivery=delivery_id, kind=kind, target=target, where=where)


def delivery_attempt(
    *,
    delivery_id: str,
    kind: str,
    target: str,
    payload: dict[str, Any],
    created_at: str | None = None,
) -> Outcome:
    """Run one attempt; the caller (a Celery task) schedules the retry."""
    r = sync_redis()
    lock_ttl = settings.DELIVERY_HTTP_TIMEOUT_S + 5
    lock = r.lock(f"dlv:{delivery_id}:lock", timeout=lock_ttl, blocking=False)
    if not lock.acquire():
        # Another worker has it (a redelivered duplicate, or a killed worker's
        # lock that has not expired yet): look again once the lock would expire.
        return Outcome(status="busy", countdown=lock_ttl)
    try:
        state = r.hgetall(state_key(delivery_id))
        if state.get("status") in ("delivered", "dead"):
            return Outcome(status="done_before", countdown=0)
        if not state:
            r.hset(state_key(delivery_id), mapping={"status": "pending", "run_attempts": 0})
        run_attempts = int(state.get("run_attempts", 0))
        if state.get("inflight"):
            # The previous attempt's worker died mid-call (SIGKILL, OOM):
            # that attempt counts, and the history says what happened.
            run_attempts = _record_attempt(
                delivery_id,
                {"at": state["inflight"], "error": "worker lost during the attempt"},
            )
        if run_attempts >= settings.DELIVERY_MAX_ATTEMPTS:
            _dead_letter(delivery_id, kind, target, payload, created_at)
            return Outcome(status="dead", countdown=0)

        sender = SENDERS[kind]
        breaker_target = sender.breaker_target(target=target, payload=payload)
        started = deadletters.now()
        permit = breaker.breaker_allow(target=breaker_target)
        if not permit["allowed"]:
            entry: dict[str, Any] = {
                "at": started.isoformat(),
                "error": f"circuit open for {breaker_target}: not called",
            }
            retryable, countdown_floor = True, permit["wait_s"]
        else:
            r.hset(state_key(delivery_id), "inflight", started.isoformat())
            t0 = time.monotonic()
            try:
                try:
                    result = sender.send(delivery_id=delivery_id, target=target, payload=payload)
                except SendError:
                    raise
                except Exception as exc:
                    # A bug or a misconfiguration, not the target's fault: keep
                    # retrying (a deploy may fix it), then dead-letter; never drop.
                    log.exception("delivery.unexpected_error", delivery=delivery_id)
                    raise SendError(
                        f"{type(exc).__name__}: {exc}"[:300],
                        retryable=True,
                        counts_against_target=False,
                    ) from exc
            except SendError as exc:
                entry = {
                    "at": started.isoformat(),
                    "error": exc.message,
                    "status_code": exc.status_code,
                    "duration_ms": round((time.monotonic() - t0) * 1000),
                    "worker": _WORKER,
                }
                retryable, countdown_floor = exc.retryable, 0.0
                if exc.counts_against_target:
                    breaker.breaker_record_failure(target=breaker_target)
                else:
                    breaker.breaker_record_success(target=breaker_target)
            else:
                breaker.breaker_record_success(target=breaker_target)
                entry = {
                    "at": started.isoformat(),
                    "error": None,
                    "status_code": result.get("status_code"),
                    "duration_ms": round((time.monotonic() - t0) * 1000),
                    "worker": _WORKER,
                }
                _record_attempt(delivery_id, entry)
                r.hset(state_key(delivery_id), "status", "delivered")
                _stat(kind, "delivered")
                return Outcome(status="delivered", countdown=0)

        run_attempts = _record_attempt(delivery_id, entry)
        _stat(kind, "failed_attempt")
        if not retryable or run_attempts >= settings.DELIVERY_MAX_ATTEMPTS:
            _dead_letter(delivery_id, kind, target, payload, created_at)
            return Outcome(status="dead", countdown=0)
        countdown = max(backoff_s(attempt=run_attempts), countdown_floor)
        log.info(
            "delivery.retry",
            delivery=delivery_id,
            attempt=run_attempts,
            countdown=round(countdown, 2),
            error=entry["error"],
        )
        return Outcome(status="retry", countdown=countdown)
    finally:
        try:
            lock.release()
        except LockError:
            # It expired during a slow call; the status decides, not the lock.
            log.info("delivery.lock_expired", delivery=delivery_id)
