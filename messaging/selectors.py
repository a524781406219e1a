"""Reads for chat. Return evaluated data so results can cross async boundaries."""

from typing import NotRequired, TypedDict

from django.db.models import QuerySet

from .conf import PAGE_MAX
from .errors import BadSeq
from .models import ChatCounter, Message


class MessageDict(TypedDict):
    seq: int
    # A hidden message keeps its slot (no client sees a gap) but loses its content.
    hidden: NotRequired[bool]
    client_id: NotRequired[str]
    author_id: NotRequired[int]
    author_name: NotRequired[str]
    body: NotRequired[str]
    created_at: NotRequired[str]


class Batch(TypedDict):
    messages: list[MessageDict]
    has_more: bool
    head: int


def message_dict(message: Message) -> MessageDict:
    if message.hidden_at is not None:
        return MessageDict(seq=message.seq, hidden=True)
    return MessageDict(
        seq=message.seq,
        client_id=message.client_id,
        author_id=message.author_id,
        author_name=message.author.display_name,
        body=message.body,
        created_at=message.created_at.isoformat(),
    )


def _rows(qs: QuerySet[Message]) -> list[Message]:
    return list(qs.select_related("author"))


def room_head_seq(*, room_id: int) -> int:
    """The newest sequence number in the room (0 before the first message)."""
    return (
        ChatCounter.objects.filter(room_id=room_id).values_list("last_seq", flat=True).first() or 0
    )


def _limit(limit: int) -> int:
    return max(1, min(int(limit), PAGE_MAX))


def messages_after(*, room_id: int, after_seq: int, limit: int = PAGE_MAX) -> Batch:
    """Messages with seq > after_seq, oldest first (resume and backfill)."""
    limit = _limit(limit)
    head = room_head_seq(room_id=room_id)
    if after_seq > head:
        raise BadSeq(head=head)
    rows = _rows(
        Message.objects.filter(room_id=room_id, seq__gt=after_seq).order_by("seq")[: limit + 1]
    )
    return Batch(
        messages=[message_dict(m) for m in rows[:limit]], has_more=len(rows) > limit, head=head
    )


def messages_before(*, room_id: int, before_seq: int | None, limit: int = 50) -> Batch:
    """The page of messages just before before_seq (None: the newest), oldest first."""
    limit = _limit(limit)
    head = room_head_seq(room_id=room_id)
    qs = Message.objects.filter(room_id=room_id)
    if before_seq is not None:
        qs = qs.filter(seq__lt=before_seq)
    rows = _rows(qs.order_by("-seq")[: limit + 1])
    page = rows[:limit]
    page.reverse()
    return Batch(messages=[message_dict(m) for m in page], has_more=len(rows) > limit, head=head)
