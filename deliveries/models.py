"""Outgoing webhooks of a room. Dead letters live in MongoDB (deadletters.py)."""

import secrets

from django.db import models
from django.utils import timezone

from rooms.models import Room

EVENTS = (
    ("message.posted", "A chat message is posted"),
    ("participant.joined", "Someone joins the call"),
    ("participant.left", "Someone leaves the call"),
    ("call.started", "A call starts"),
    ("call.ended", "A call ends"),
)
EVENT_NAMES = frozenset(name for name, _ in EVENTS)


def new_webhook_secret() -> str:
    # 256 bits from the OS CSPRNG; the receiver uses it to verify signatures.
    return secrets.token_hex(32)


class Webhook(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128, default=new_webhook_secret)
    events = models.JSONField(default=list, help_text="Event names this webhook receives.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["room", "created_at"]

    def __str__(self) -> str:
        return f"{self.url} ({self.room.slug})"


class DeadLetter(models.Model):
    """No table: gives the MongoDB dead letters a place and permissions in the admin.

    The admin views (deliveries/admin.py) read and write MongoDB through
    deliveries/deadletters.py; nothing ever queries this model.
    """

    class Meta:
        managed = False
        db_table = "deliveries_deadletter_unused"
        verbose_name = "dead letter"
        verbose_name_plural = "dead letters"
        default_permissions = ("view", "change")

    def __str__(self) -> str:
        return "dead letter"
