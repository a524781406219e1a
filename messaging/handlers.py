"""Handlers for chat frames (docs/protocol.md, Chat).

The durable record decides: ``chat.ack`` goes out only after the commit, and
``chat.message`` is a wake-up that may be lost; clients repair gaps with
``chat.sync``.
"""

from typing import Any

import structlog
from channels.db import database_sync_to_async

from rooms.protocol import Frame, handles
from rooms.session import Session
from videochat import metrics
from videochat.errors import AppError, BadRequest, Unavailable

from . import fanout, selectors, writer
from .conf import CHAT_LIMIT, PAGE_MAX

log = structlog.get_logger(__name__)

HISTORY_PAGE = 50
# Unacknowledged sends one socket may have in flight; the next waits.
SEND_WINDOW = 64


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


@handles("chat.send", limit=CHAT_LIMIT)
async def chat_send(session: Session, frame: Frame) -> None:
    # Queued for the next group commit in frame order (so one sender's
    # messages keep their order); the ack waits for the commit beside the
    # frame loop, so the socket's next sends join the same or the next batch
    # instead of waiting one commit each (an outbox flushed after a reconnect).
    await fanout.room_listen(room_id=session.room_id, session=session)
    pending = writer.message_enqueue(
        room_id=session.room_id,
        author_id=session.member_id,
        body=frame.get("body"),
        client_id=frame.get("client_id"),
    )
    await session.run_beside(_ack_when_durable(session, frame, pending), window=SEND_WINDOW)


async def _ack_when_durable(session: Session, frame: Frame, pending: Any) -> None:
    ref = frame.get("ref") if isinstance(frame.get("ref"), (str, int)) else None
    try:
        result = await pending
    except AppError as exc:
        await session.fail(exc, ref=ref)
        return
    except Exception as exc:  # noqa: BLE001
        # Nothing was committed; the client's outbox resends the same client_id.
        log.warning("chat.send_failed", room=session.room_id, error=repr(exc))
        await session.fail(Unavailable(retry_after=1), ref=ref)
        return
    # Valid, or the write would have failed; a hidden original has no client_id to echo.
    await session.reply(
        {"type": "chat.ack", "client_id": frame["client_id"], "seq": result["message"]["seq"]}
    )
    # The wake-up to the room (this socket included) went out with the batch.


@handles("chat.sync")
async def chat_sync(session: Session, frame: Frame) -> None:
    after_seq = _seq(frame, "after_seq")
    # Every client syncs right after welcome: from here on this socket gets
    # the room's chat wake-ups.
    await fanout.room_listen(room_id=session.room_id, session=session)
    batch = await database_sync_to_async(selectors.messages_after)(
        room_id=session.room_id, after_seq=after_seq, limit=_limit(frame, PAGE_MAX)
    )
    metrics.chat_synced(messages=len(batch["messages"]))
    await session.reply({"type": "chat.batch", "after_seq": after_seq, **batch})


@handles("chat.history")
async def chat_history(session: Session, frame: Frame) -> None:
    before_seq = _seq(frame, "before_seq", optional=True)
    await fanout.room_listen(room_id=session.room_id, session=session)
    batch = await database_sync_to_async(selectors.messages_before)(
        room_id=session.room_id, before_seq=before_seq, limit=_limit(frame, HISTORY_PAGE)
    )
    await session.reply({"type": "chat.page", "before_seq": before_seq, **batch})


@handles("chat.typing")
async def chat_typing(session: Session, frame: Frame) -> None:
    await session.broadcast(
        {
            "type": "chat.typing",
            "peer_id": session.peer_id,
            "member_id": session.member_id,
            "display_name": session.member["display_name"],
        },
        exclude_self=True,
    )
