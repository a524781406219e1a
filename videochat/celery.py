import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")

app = Celery("videochat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _serve_metrics(**kwargs: Any) -> None:
    """In the main process, once the pool's children run (no thread across their fork)."""
    from django.conf import settings

    if settings.METRICS_WORKER_PORT:
        from videochat import metricsserver

        metricsserver.serve_in_thread(
            bind=settings.METRICS_WORKER_BIND, port=settings.METRICS_WORKER_PORT
        )
