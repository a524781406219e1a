"""Writes for deliveries: emit room events, notify offline members, manage
webhooks, replay and discard dead letters."""

import json
import uuid
from datetime import datetime
from typing import Any

import structlog
from django.db import transaction
from django.utils import timezone

from rooms.models import Membership, Room
from rooms.presence import presence_member_ids_sync
from videochat.text import text_check

from . import deadletters, pipeline
from .connections import sync_redis
from .enqueue import delivery_enqueue
from .models import EVENT_NAMES, Webhook
from .urlsafety import url_check

log = structlog.get_logger(__name__)


def new_delivery_id() -> str:
    return uuid.uuid4().hex


def _enqueue(*, delivery_id: str, kind: str, target: str, payload: dict[str, Any]) -> None:
    created_at = timezone.now().isoformat()
    try:
        delivery_enqueue(
            delivery_id=delivery_id,
            kind=kind,
            target=target,
            payload=payload,
            created_at=created_at,
        )
    except Exception:
        # The broker is unreachable after the commit: log exactly what was not
        # enqueued so an operator can resend it.
        task = {
            "delivery_id": delivery_id,
            "kind": kind,
            "target": target,
            "payload": payload,
            "created_at": created_at,
        }
        log.exception("delivery.enqueue_failed", delivery=delivery_id, task=json.dumps(task))
        raise


def _enqueue_on_commit(*, delivery_id: str, kind: str, target: str, payload: dict) -> None:
    # robust: the caller's write is committed (a chat message may already be
    # acknowledged); a broker outage must not turn that into an error. The
    # failure is logged with the whole task so it can be resent.
    transaction.on_commit(
        lambda: _enqueue(delivery_id=delivery_id, kind=kind, target=target, payload=payload),
        robust=True,
    )


def room_event_emit(*, room_id: int, event: str, data: dict) -> int:
    """Enqueue (after commit) one delivery per active webhook of the room that
    subscribed to ``event``; returns how many."""
    return room_events_emit(room_id=room_id, events=[(event, data)])


def room_events_emit(*, room_id: int, events: list[tuple[str, dict]]) -> int:
    """``room_event_emit`` for several events of one room, reading its webhooks once
    (a join that also starts the call); returns how many."""
    return rooms_events_emit(events_by_room={room_id: events})


def rooms_events_emit(*, events_by_room: dict[int, list[tuple[str, dict]]]) -> int:
    """``room_event_emit`` for events of several rooms, reading their webhooks in one
    query (a group-committed chat batch); returns how many."""
    unknown = [e for events in events_by_room.values() for e, _ in events if e not in EVENT_NAMES]
    if unknown:
        raise ValueError(f"unknown room event {unknown[0]!r}")
    rooms = [room_id for room_id, events in events_by_room.items() if events]
    if not rooms:
        return 0
    hooks: dict[int, list[dict[str, Any]]] = {}
    for row in (
        Webhook.objects.filter(room_id__in=rooms, active=True)
        .order_by("id")  # not Meta.ordering: that joins rooms
        .values("id", "room_id", "url", "events")
    ):
        hooks.setdefault(row["room_id"], []).append(dict(row))
    count = 0
    created_at = timezone.now().isoformat()
    for room_id in rooms:
        for event, data in events_by_room[room_id]:
            for hook in hooks.get(room_id, ()):
                if event not in (hook["events"] or []):
                    continue
                payload = {
                    "webhook_id": hook["id"],
                    "room_id": room_id,
                    "event": event,
                    "data": data,
                    "created_at": created_at,
                }
                _enqueue_on_commit(
                    delivery_id=new_delivery_id(),
                    kind="webhook",
                    target=hook["url"],
                    payload=payload,
                )
                count += 1
    return count


def notify_offline_members(*, room_id: int, member_ids: list[int], reason: str, text: str) -> int:
    """Email those of ``member_ids`` who are not in the room's call right now
    and have an address; returns how many emails were enqueued."""
    room = Room.objects.get(pk=room_id)
    online = presence_member_ids_sync(client=sync_redis(), room_id=room_id)
    members = (
        Membership.objects.filter(room_id=room_id, id__in=member_ids, user__isnull=False)
        .exclude(id__in=online)
        .exclude(user__email="")
        .select_related("user")
    )
    count = 0
    for member in members:
        assert member.user is not None  # filtered above
        payload = {
            "room_id": room_id,
            "member_id": member.pk,
            "reason": reason,
            "subject": f"[Huddle] {reason} in {room.name}",
            "body": f"{text}\n\nRoom: {room.name} ({room.slug})\n",
        }
        _enqueue_on_commit(
            delivery_id=new_delivery_id(), kind="email", target=member.user.email, payload=payload
        )
        count += 1
    return count


# --- webhooks (room owners) ---------------------------------------------------


def webhook_create(*, room: Room, url: str, events: list[str], allow_private: bool) -> Webhook:
    text_check(url, field="url")
    url_check(url=url, allow_private=allow_private)
    unknown = set(events) - EVENT_NAMES
    if unknown or not events:
        raise ValueError(f"bad events: {sorted(unknown) or 'none chosen'}")
    return Webhook.objects.create(room=room, url=url, events=sorted(events))


def webhook_set_active(*, webhook: Webhook, active: bool) -> Webhook:
    webhook.active = active
    webhook.save(update_fields=["active"])
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


# --- dead letters (moderators, maintenance) ---------------------------------


def deadletter_replay(*, delivery_id: str, by: str) -> bool:
    """Send a dead letter again with a fresh retry budget; False if it is not
    (or no longer) dead. Replaying twice at once replays once."""
    doc = deadletters.deadletter_transition(
        delivery_id=delivery_id, from_status="dead", to_status="replayed", by=by
    )
    if doc is None:
        return False
    pipeline.delivery_reset_for_replay(delivery_id=delivery_id, attempts=doc["attempts"])
    created = doc.get("created_at")
    try:
        delivery_enqueue(
            delivery_id=delivery_id,
            kind=doc["kind"],
            target=doc["target"],
            payload=doc["payload"],
            created_at=created.isoformat() if isinstance(created, datetime) else created,
            note=" (replay)",
        )
    except Exception:
        # Not queued: put it back so it can be replayed again.
        deadletters.deadletter_transition(
            delivery_id=delivery_id, from_status="replayed", to_status="dead", by="enqueue failed"
        )
        raise
    log.info("deadletter.replayed", delivery=delivery_id, by=by)
    return True


def deadletter_discard(*, delivery_id: str, by: str) -> bool:
    doc = deadletters.deadletter_transition(
        delivery_id=delivery_id, from_status="dead", to_status="discarded", by=by
    )
    if doc is not None:
        log.info("deadletter.discarded", delivery=delivery_id, by=by)
    return doc is not None
