"""Handlers for chat frames (docs/protocol.md, Chat).

The durable record decides: ``chat.ack`` goes out only after the commit, and
``chat.message`` is a wake-up that may be lost; clients repair gaps with
``chat.sync``.
"""

from typing import Any

import structlog
from channels.db import database_sync_to_async

from rooms.consumers import RoomConsumer
from rooms.protocol import Frame, handles
from videochat import ratelimit
from videochat.errors import BadRequest

from . import fanout, selectors, writer
from .conf import CHAT_LIMIT, PAGE_MAX

log = structlog.get_logger(__name__)

HISTORY_PAGE = 50


def _seq(frame: Frame, key: str, *, optional: bool = False) -> int | None:
    value: Any = frame.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"{key} must be a non-negative integer.")
    return value


def _limit(frame: Frame, default: int) -> int:
    value = frame.get("limit", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= PAGE_MAX:
        raise BadRequest(f"limit must be an integer from 1 to {PAGE_MAX}.")
    return value


@handles("chat.send")
async def chat_send(consumer: RoomConsumer, frame: Frame) -> None:
    await ratelimit.hit(CHAT_LIMIT, consumer.rate_key)
    await fanout.room_listen(room_id=consumer.room["id"], consumer=consumer)
    result = await writer.message_submit(
        room_id=consumer.room["id"],
        author_id=consumer.member["id"],
        body=frame.get("body"),
        client_id=frame.get("client_id"),
    )
    message = result["message"]
    # Valid, or message_submit would have raised; a hidden original has no client_id to echo.
    await consumer.send_json(
        {"type": "chat.ack", "client_id": frame["client_id"], "seq": message["seq"]}
    )
    if result["created"]:
        try:
            await fanout.room_publish(
                room_id=consumer.room["id"], frame={"type": "chat.message", **message}
            )
        except Exception:  # noqa: BLE001
            # The write is committed and acknowledged; a lost wake-up is
            # repaired by the receivers' next sync.
            log.warning("chat.broadcast_failed", room=consumer.room["id"], seq=message["seq"])


@handles("chat.sync")
async def chat_sync(consumer: RoomConsumer, frame: Frame) -> None:
    after_seq = _seq(frame, "after_seq")
    # Every client syncs right after welcome: from here on this socket gets
    # the room's chat wake-ups.
    await fanout.room_listen(room_id=consumer.room["id"], consumer=consumer)
    batch = await database_sync_to_async(selectors.messages_after)(
        room_id=consumer.room["id"], after_seq=after_seq, limit=_limit(frame, PAGE_MAX)
    )
    await consumer.send_json({"type": "chat.batch", "after_seq": after_seq, **batch})


@handles("chat.history")
async def chat_history(consumer: RoomConsumer, frame: Frame) -> None:
    before_seq = _seq(frame, "before_seq", optional=True)
    await fanout.room_listen(room_id=consumer.room["id"], consumer=consumer)
    batch = await database_sync_to_async(selectors.messages_before)(
        room_id=consumer.room["id"], before_seq=before_seq, limit=_limit(frame, HISTORY_PAGE)
    )
    await consumer.send_json({"type": "chat.page", "before_seq": before_seq, **batch})


@handles("chat.typing")
async def chat_typing(consumer: RoomConsumer, frame: Frame) -> None:
    await consumer.broadcast(
        {
            "type": "chat.typing",
            "peer_id": consumer.peer_id,
            "member_id": consumer.member["id"],
            "display_name": consumer.member["display_name"],
        },
        exclude_self=True,
    )
