"""Reads for deliveries."""

from rooms.models import Role, Room

from .models import Webhook


def room_webhooks(*, room: Room) -> list[Webhook]:
    return list(Webhook.objects.filter(room=room).order_by("created_at"))


def is_room_owner(*, room: Room, user) -> bool:
    """Webhooks carry a room's events to outside servers: the owner alone decides."""
    if not user.is_authenticated:
        return False
    if room.owner_id == user.pk:
        return True
    return room.memberships.filter(user=user, role=Role.OWNER).exists()
