"""kombu's Redis Sentinel transport for Celery, made to survive a failover and to
give back the tasks it held at once (``CELERY_BROKER_TRANSPORT`` with
``REDIS_SENTINELS``).

A worker holds a task unacknowledged while it runs (acks_late) and while it waits
for its countdown (a retry); kombu keeps such a task in the broker's unacked hash
and, when the channel closes, puts it back on its queue. Two things went wrong
when the primary died under it (bench/RESULTS.md, Redis Sentinel failover):

- On a failover Celery closes the broker connection, and kombu forgets the
  connection's settings (the transport's ``client`` becomes None) before every
  channel is closed. A channel closed after that, holding unacknowledged tasks,
  builds a new pool to restore them and fails on the missing settings with
  ``AttributeError: 'NoneType' object has no attribute 'hostname'``, which is no
  connection error: Celery's worker stopped ("Unrecoverable error") instead of
  reconnecting. Raised as a connection error, kombu's close ignores it and the
  worker reconnects to the new primary.
- That restore (or one against the dead primary) fails, and nobody tries again:
  the held tasks stayed in the unacked hash until the unacked sweep restored them
  after ``CELERY_VISIBILITY_TIMEOUT`` (an hour). The visibility timeout cannot be
  short, since it must exceed the longest retry countdown or a waiting task is
  redelivered and runs twice (deliveries/checks.py). So the worker remembers the
  tags it failed to restore and restores them itself through its next connection
  that works: when it consumes again, and at every unacked sweep tick
  (``CELERY_UNACKED_RESTORE_INTERVAL``) until that succeeds. Celery dropped its
  copies when the connection broke (their countdown timers too), so a restored
  task is received once more and waits for the same ``eta``.

A task still running in this worker is not restored (it would run twice beside
itself); its late ack settles it: removed from the unacked hash through the new
connection when the ack on the dead one failed. What only the broker knew is not
covered: a task whose unacked entry had not reached the replica when the primary
died (Redis replicates asynchronously), and the tasks of a worker that died (the
sweep restores those after the visibility timeout).
"""

from typing import Any

import structlog
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

log = structlog.get_logger(__name__)

# This process's delivery tags whose restore failed (to restore), and whose late
# ack failed (their task ran: to remove). One worker process consumes through one
# connection at a time, and all its channels use the same unacked keys.
_stranded: set[str] = set()
_acked: set[str] = set()


def _running_tags() -> set[str]:
    """The delivery tags of the tasks this worker process runs now."""
    from celery.worker import state

    return {
        request.message.delivery_tag
        for request in list(state.active_requests)
        if request.message is not None
    }


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> None:
        held: list[str] = list(self._delivered or ())
        try:
            super().restore_unacked(client)
        except Exception:
            _stranded.update(held)
            log.warning("celery.restore_failed", tasks=len(held), pending=len(_stranded))
            raise

    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)
        except Exception:
            _acked.add(delivery_tag)
            raise
        _stranded.discard(delivery_tag)  # settled: nothing left to restore

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().reject(delivery_tag, requeue)
        _stranded.discard(delivery_tag)

    def restore_visible(self, *args: Any, **kwargs: Any) -> Any:
        self.restore_stranded()
        return super().restore_visible(*args, **kwargs)

    def restore_stranded(self) -> None:
        """Settle the tags earlier connections could not; raises connection errors."""
        if not (_stranded or _acked):
            return
        acked, held = list(_acked), list(_stranded - _acked - _running_tags())
        if not (acked or held):
            return
        with self.channel.conn_or_acquire() as client:
            for tag in acked:
                self._remove_from_indices(tag, client.pipeline()).execute()
                _acked.discard(tag)
                _stranded.discard(tag)
            missing = []
            for tag in held:
                # A no-op for a tag no longer in the unacked hash.
                if not client.hexists(self.unacked_key, tag):
                    missing.append(tag)
                self.restore_by_tag(tag, client=client)
                _stranded.discard(tag)
        log.info(
            "celery.held_tasks_settled",
            restored=len(held) - len(missing),
            acked=len(acked),
            missing=len(missing),
        )
        if missing:
            # Not on this primary: restored or settled by someone else meanwhile, or
            # lost with the old primary (its unacked entry never reached the replica).
            log.warning("celery.held_tasks_missing", tags=missing)


class Channel(kombu_redis.SentinelChannel):
    QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("The broker connection is closed.")
        return super()._connparams(asynchronous)

    def basic_consume(self, queue: str, *args: Any, **kwargs: Any) -> Any:
        consumer_tag = super().basic_consume(queue, *args, **kwargs)
        try:
            self.qos.restore_stranded()
        except self.connection_errors:
            log.info("celery.restore_deferred", pending=len(_stranded))
        return consumer_tag


class Transport(kombu_redis.SentinelTransport):
    Channel = Channel
