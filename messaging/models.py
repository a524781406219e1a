"""Chat messages: the durable record that decides what every client sees."""

from django.db import models
from django.utils import timezone

from rooms.models import Membership, Room


class ChatCounter(models.Model):
    """The last sequence number handed out in a room.

    Locked (SELECT ... FOR UPDATE; on SQLite the IMMEDIATE transaction) while a
    message is written, so sequence numbers are dense and in commit order: a
    client that holds seq n and asks for "after n" can never miss a message
    that commits later with a smaller number.
    """

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="chat_counter")
    last_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"chat counter of room {self.room_id}: {self.last_seq}"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveBigIntegerField()
    author = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="messages")
    # Chosen by the client; a resend with the same id returns the original.
    client_id = models.CharField(max_length=64)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="one_message_per_room_seq"),
            models.UniqueConstraint(
                fields=["room", "author", "client_id"], name="one_message_per_client_id"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in room {self.room_id}"
