"""Queue Celery tasks by name, for the code below the tasks.

``deliveries.tasks`` is an entry point: it imports the pipeline and the
dead-letter store. When those (and the services) imported the task objects
back to queue them, every one of them sat in an import circle with the tasks
module. Queuing by name needs only the broker, not the task's code.
"""

from typing import Any

from celery import current_app

# The names deliveries/tasks.py registers its tasks under.
DELIVER = "deliveries.deliver"
DEADLETTER_SPOOL_FLUSH = "deliveries.deadletter_spool_flush"


def task_send(
    name: str,
    *,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    countdown: float | None = None,
    kwargsrepr: str | None = None,
) -> None:
    """Queue task ``name``; raises what the broker raises (the caller decides)."""
    # No result backend is configured and no caller waits: ignore_result keeps
    # send_task from preparing to collect one.
    current_app.send_task(
        name,
        args=args,
        kwargs=kwargs,
        countdown=countdown,
        kwargsrepr=kwargsrepr,
        ignore_result=True,
    )


def delivery_enqueue(
    *,
    delivery_id: str,
    kind: str,
    target: str,
    payload: dict[str, Any],
    created_at: str | None,
    note: str = "",
) -> None:
    """Queue one attempt of a delivery (``deliveries.tasks.deliver``)."""
    task_send(
        DELIVER,
        kwargs={
            "delivery_id": delivery_id,
            "kind": kind,
            "target": target,
            "payload": payload,
            "created_at": created_at,
        },
        # Workers' logs and monitors show the id, not the payload (message
        # text, addresses), and Celery skips repr-ing it per message.
        kwargsrepr=f"delivery {kind} {delivery_id}{note}",
    )
