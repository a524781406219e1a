"""Scheduled maintenance: each is a management command (with --dry-run) and an
rq job (jobs.py), scheduled by rq's cron (cron.py). Each returns a report dict."""

import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from . import breaker, deadletters, services
from .connections import sync_redis


def deadletters_replay(
    *,
    kind: str | None = None,
    since: datetime | None = None,
    delivery_ids: list[str] | None = None,
    limit: int = 500,
    dry_run: bool = False,
    by: str = "maintenance",
) -> dict[str, Any]:
    """Replay dead letters (status dead), optionally by kind / died since."""
    query = deadletters.deadletter_query(kind=kind, status="dead", since=since)
    if delivery_ids:
        query["_id"] = {"$in": list(delivery_ids)}
    docs, total = deadletters.deadletter_list(query=query, limit=limit)
    ids = [d["_id"] for d in docs]
    if dry_run:
        return {"dry_run": True, "matched": total, "would_replay": ids}
    replayed = [i for i in ids if services.deadletter_replay(delivery_id=i, by=by)]
    return {"dry_run": False, "matched": total, "replayed": replayed}


def retention_prune(*, dry_run: bool = False) -> dict[str, Any]:
    """Delete dead letters older than DEADLETTER_TTL_DAYS (the TTL index does
    this too, where the server runs it) and chat messages older than
    CHAT_RETENTION_DAYS."""
    from messaging.models import Message  # lazily: the chat app owns it

    now = timezone.now()
    dl_cutoff = now - timedelta(days=settings.DEADLETTER_TTL_DAYS)
    chat_cutoff = now - timedelta(days=settings.CHAT_RETENTION_DAYS)
    deadletter_count = deadletters.deadletter_prune(older_than=dl_cutoff, dry_run=dry_run)
    old_messages = Message.objects.filter(created_at__lt=chat_cutoff)
    if dry_run:
        message_count = old_messages.count()
    else:
        message_count, _ = old_messages.delete()
    return {
        "dry_run": dry_run,
        "deadletters": deadletter_count,
        "deadletters_before": dl_cutoff.isoformat(),
        "messages": message_count,
        "messages_before": chat_cutoff.isoformat(),
    }


def presence_expire(*, dry_run: bool = False, timeout_s: float | None = None) -> dict[str, Any]:
    """Remove peers whose heartbeats stopped in rooms nobody pings any more
    (the room socket reaps on each ping; an empty room has no pinger)."""
    from rooms import presence

    timeout = presence.PRESENCE_TIMEOUT_S if timeout_s is None else timeout_s
    r = sync_redis()
    room_ids = presence.presence_room_ids_sync(client=r)
    stale = {
        room_id: presence.presence_stale_sync(client=r, room_id=room_id, timeout_s=timeout)
        for room_id in room_ids
    }
    stale = {room_id: peers for room_id, peers in stale.items() if peers}
    if dry_run:
        would = {str(room_id): peers for room_id, peers in stale.items()}
        return {"dry_run": True, "rooms": len(room_ids), "would_expire": would}
    expired = asyncio.run(_reap_and_announce(list(stale), timeout))
    return {"dry_run": False, "rooms": len(room_ids), "expired": expired}


async def _reap_and_announce(room_ids: list[int], timeout_s: float) -> dict[str, list[str]]:
    # The socket's own reaper: the room hears the leaves, the webhooks get
    # participant.left / call.ended, as for any other removal.
    from rooms.calls import reap_and_announce

    expired: dict[str, list[str]] = {}
    for room_id in room_ids:
        gone = await reap_and_announce(room_id, timeout_s=timeout_s)
        expired[str(room_id)] = [g["peer_id"] for g in gone]
    return expired


def delivery_health(*, hours: int = 24) -> dict[str, Any]:
    """Deliveries and failures per kind over the last ``hours``, breakers,
    the dead-letter spool, dead letters by status and the Celery queue."""
    r = sync_redis()
    totals: dict[str, int] = {}
    now = time.time()
    keys = [
        "dlv:stats:" + time.strftime("%Y%m%d%H", time.gmtime(now - h * 3600)) for h in range(hours)
    ]
    for key in keys:
        for field, value in r.hgetall(key).items():
            totals[str(field)] = totals.get(str(field), 0) + int(value)
    report: dict[str, Any] = {
        "window_hours": hours,
        "counts": dict(sorted(totals.items())),
        "breakers": breaker.breaker_list(),
        "spooled_deadletters": deadletters.spool_length(),
        # While letters are spooled this should be true: their one flusher is on it.
        "spool_flusher": bool(r.exists(deadletters.FLUSHER_KEY)),
        "celery_queue": int(r.llen("celery")),
    }
    try:
        report["deadletters"] = deadletters.deadletter_counts()
    except Exception as exc:  # noqa: BLE001 - the report says MongoDB is down
        report["deadletters"] = f"unavailable: {type(exc).__name__}"
    delivered = sum(v for k, v in totals.items() if k.endswith(":delivered"))
    dead = sum(v for k, v in totals.items() if k.endswith(":dead"))
    report["healthy"] = (
        not any(b["state"] == "open" for b in report["breakers"])
        and report["spooled_deadletters"] == 0
        and (delivered + dead == 0 or dead / (delivered + dead) < 0.05)
    )
    return report


def spool_flush(*, dry_run: bool = False) -> dict[str, Any]:
    """Make sure spooled dead letters have their one flusher (a Celery task).

    Not a second flusher beside it: the running one would write the same letters.
    """
    if dry_run:
        return {"dry_run": True, "spooled": deadletters.spool_length()}
    spooled = deadletters.spool_length()
    return {"dry_run": False, "spooled": spooled, "flusher": deadletters.spool_flusher_ensure()}


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=str)
