"""Celery tasks: the delivery pipeline's retry loop and the dead-letter spool.

acks_late + reject_on_worker_lost: a task whose worker dies is redelivered,
and the pipeline's lock and terminal status make the rerun idempotent. A
delivery's retry is published through videochat.celery.task_retry, so one
retrying during a broker failover is not dropped.
"""

from typing import Any

import structlog
from celery import shared_task
from django.conf import settings
from pymongo.errors import PyMongoError

from videochat import metrics
from videochat.celery import task_retry

from . import deadletters, enqueue, pipeline

log = structlog.get_logger(__name__)


def _repr(kind: str, delivery_id: str) -> str:
    # Logs and monitors show the id, never the payload (message text, addresses).
    return f"delivery {kind} {delivery_id}"


@shared_task(
    bind=True,
    name=enqueue.DELIVER,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the pipeline counts attempts (they survive replays and redeliveries)
    ignore_result=True,
)
def deliver(
    self,
    *,
    delivery_id: str,
    kind: str,
    target: str,
    payload: dict[str, Any],
    created_at: str | None = None,
) -> str:
    try:
        outcome = pipeline.delivery_attempt(
            delivery_id=delivery_id,
            kind=kind,
            target=target,
            payload=payload,
            created_at=created_at,
        )
    except Exception as exc:
        # The pipeline itself failed (Redis or MongoDB trouble, a bug). A failed
        # task would be acknowledged and forgotten: retry it instead, so the
        # delivery ends delivered or dead-lettered, never dropped.
        countdown = pipeline.backoff_s(attempt=self.request.retries + 1)
        metrics.delivery_outcome(kind=kind, outcome="error")
        log.exception("delivery.pipeline_error", delivery=delivery_id, countdown=countdown)
        raise task_retry(
            self, countdown=countdown, exc=exc, kwargsrepr=_repr(kind, delivery_id)
        ) from exc
    metrics.delivery_outcome(kind=kind, outcome=outcome["status"])
    if outcome["status"] in ("retry", "waiting", "busy"):
        raise task_retry(self, countdown=outcome["countdown"], kwargsrepr=_repr(kind, delivery_id))
    return outcome["status"]


@shared_task(
    bind=True,
    name=enqueue.DEADLETTER_SPOOL_FLUSH,
    # Acknowledged when it starts, so its own retry is never a second message
    # beside it: one flusher, pending or running. One lost with its worker is
    # restarted once its flag expires (deadletters.FLUSHER_LEASE_S).
    acks_late=False,
    max_retries=None,
    ignore_result=True,
)
def deadletter_spool_flush(self, token: str | None = None) -> int:
    """Drain the whole dead-letter spool once MongoDB answers; retried until it does.

    ``token`` is the flusher flag this task owns; a task whose token is not
    the flag's (a duplicate) does nothing.
    """
    if token is None:  # queued by hand: take the flag like any flusher
        token = deadletters.spool_flusher_claim()
        if token is None:
            return 0
    if not deadletters.spool_flusher_renew(token=token, ttl_s=deadletters.FLUSHER_LEASE_S):
        return 0
    try:
        return deadletters.spool_drain(token=token)
    except PyMongoError as exc:
        attempt = self.request.retries + 1
        countdown = min(pipeline.backoff_s(attempt=attempt), settings.DELIVERY_RETRY_MAX_S)
        log.warning("deadletter.spool_flush_failed", attempt=attempt, error=str(exc)[:200])
        deadletters.spool_flusher_renew(token=token, ttl_s=countdown + deadletters.FLUSHER_LEASE_S)
        raise self.retry(countdown=countdown, kwargs={"token": token}) from exc


@shared_task(name="deliveries.noop", ignore_result=True, acks_late=True)
def noop(*, counter_key: str) -> None:
    """Benchmark baseline: the cheapest observable task (one Redis INCR)."""
    from .connections import sync_redis

    sync_redis().incr(counter_key)
