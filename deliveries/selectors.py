"""Reads for deliveries."""

from typing import Any

from rooms.models import Role, Room

from . import breaker
from .models import Webhook
from .senders import SENDERS


def room_webhooks(*, room: Room) -> list[dict[str, Any]]:
    """The room's webhooks, each with its target's breaker (what owners need to see
    when their receiver is failing)."""
    rows = []
    for hook in Webhook.objects.filter(room=room).order_by("created_at"):
        target = SENDERS["webhook"].breaker_target(target=hook.url, payload={})
        try:
            info: breaker.BreakerInfo | None = breaker.breaker_info(target=target)
        except Exception:  # noqa: BLE001 - the page works without Redis
            info = None
        rows.append({"hook": hook, "breaker": info})
    return rows


def is_room_owner(*, room: Room, user) -> bool:
    """Webhooks carry a room's events to outside servers: the owner alone decides."""
    if not user.is_authenticated:
        return False
    if room.owner_id == user.pk:
        return True
    return room.memberships.filter(user=user, role=Role.OWNER).exists()
