import os
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject, Retry
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_ready
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")

# CELERY_BROKER_TRANSPORT picks the app's Sentinel transport for the first
# connection only: on a failed connect kombu moves to the next Sentinel URL
# (Connection.switch), which takes the transport from the URL's scheme again. The
# scheme itself must name it, or a worker runs on kombu's own after its first
# failover (videochat/kombusentinel.py says what that costs).
TRANSPORT_ALIASES["sentinel"] = "videochat.kombusentinel:Transport"

app = Celery("videochat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A retry is a new message the worker publishes. Celery's default publish retry
# gives up after about 0.6 s, and a retry it could not publish rejects its task
# without requeue: a task retrying while the broker had no primary (a Sentinel
# failover: 2-7 s) was dropped. This waits about 50 s.
RETRY_PUBLISH_POLICY = {
    "max_retries": 30,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 2,
}


def task_retry(task: Task, **options: Any) -> Retry:
    """``task.retry(**options)`` (raises Retry) whose new message outlives a broker failover.

    The publish waits for a primary (RETRY_PUBLISH_POLICY); if it still fails, the
    task (acks_late) goes back on its queue, to run again now, instead of being dropped.
    """
    try:
        return task.retry(retry_policy=RETRY_PUBLISH_POLICY, **options)
    except Reject as exc:
        if exc.requeue:
            raise
        raise Reject(exc.reason, requeue=True) from exc


@before_task_publish.connect
def _carry_log_ids(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    from videochat import requestid

    if headers is not None:
        headers[requestid.TASK_HEADER] = requestid.ids_for_task()


@task_prerun.connect
def _bind_log_ids(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    from videochat import requestid

    carried = getattr(task.request, requestid.TASK_HEADER, None) if task is not None else None
    requestid.task_bind(task_id=task_id, carried=carried)


@task_postrun.connect
def _unbind_log_ids(**kwargs: Any) -> None:
    import structlog

    structlog.contextvars.clear_contextvars()


@worker_ready.connect
def _serve_metrics(**kwargs: Any) -> None:
    """In the main process, once the pool's children run (no thread across their fork)."""
    from django.conf import settings

    if settings.METRICS_WORKER_PORT:
        from videochat import metricsserver

        metricsserver.serve_in_thread(
            bind=settings.METRICS_WORKER_BIND, port=settings.METRICS_WORKER_PORT
        )
