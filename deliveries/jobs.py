"""rq jobs (django-rq's "default" queue): the maintenance functions, with
plain-JSON arguments so they show readably in django-rq's dashboard."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from . import maintenance


def replay_deadletters(
    *, kind: str | None = None, since_hours: float | None = None, dry_run: bool = False
) -> dict[str, Any]:
    since = timezone.now() - timedelta(hours=since_hours) if since_hours else None
    return maintenance.deadletters_replay(kind=kind, since=since, dry_run=dry_run, by="rq")


def prune_retention(*, dry_run: bool = False) -> dict[str, Any]:
    return maintenance.retention_prune(dry_run=dry_run)


def expire_presence(*, dry_run: bool = False) -> dict[str, Any]:
    return maintenance.presence_expire(dry_run=dry_run)


def delivery_health() -> dict[str, Any]:
    report = maintenance.delivery_health()
    report["breakers"] = [dict(b) for b in report["breakers"]]
    return report


def flush_deadletter_spool(*, dry_run: bool = False) -> dict[str, Any]:
    return maintenance.spool_flush(dry_run=dry_run)
