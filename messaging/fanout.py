"""Chat wake-ups, fanned out once per server process instead of once per socket.

A channel-layer group_send to a room costs one Redis delivery per socket in
the room. Here a message is published once on a Redis pub/sub channel per
room; each server process subscribed to that room (because it holds sockets
in it) receives it once and writes the same text to its local sockets.

Like the channel layer this is at most once (pub/sub drops whatever is
published while a subscriber reconnects): it is only a wake-up. The record
decides, and clients repair any loss with chat.sync (docs/protocol.md, Chat).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from videochat.loops import per_loop
from videochat.redis import get_redis

if TYPE_CHECKING:
    from rooms.session import Session

log = structlog.get_logger(__name__)


def _channel(room_id: int) -> str:
    return f"chat:room:{int(room_id)}"


class _Hub:
    def __init__(self) -> None:
        self.rooms: dict[int, weakref.WeakSet[Session]] = {}
        self.pubsub: Any = None
        self.task: asyncio.Task | None = None
        self.subscribed: set[int] = set()

    async def join(self, room_id: int, session: Session) -> None:
        members = self.rooms.setdefault(room_id, weakref.WeakSet())
        if session in members:
            return
        members.add(session)
        if self.task is None or self.task.done():
            self.pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
            self.subscribed = set()
            # Shared by every local socket: not the first one's log ids.
            self.task = asyncio.create_task(self._listen(), context=contextvars.Context())
        if room_id not in self.subscribed:
            await self._subscribe(room_id)

    async def _subscribe(self, room_id: int) -> None:
        await self.pubsub.subscribe(_channel(room_id))
        self.subscribed.add(room_id)

    async def _listen(self) -> None:
        while True:
            if self.pubsub.connection is None:  # the first subscribe is still on its way
                await asyncio.sleep(0.01)
                continue
            try:
                message = await self.pubsub.get_message(timeout=1.0)
                if message is None:
                    await self._prune()
                    continue
            except Exception as exc:  # noqa: BLE001
                # Redis went away: redis-py reconnects and resubscribes on the
                # next call; whatever was published meanwhile is lost (clients sync).
                log.warning("chat.fanout_reconnect", error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            try:
                room_id = int(str(message["channel"]).rsplit(":", 1)[1])
            except (KeyError, ValueError, IndexError):
                continue
            text = message["data"]  # the frame, encoded once for every socket
            for session in list(self.rooms.get(room_id, ())):
                if not session.ready:
                    continue
                try:
                    await session.send_text(text)
                except Exception:  # noqa: BLE001, S112
                    continue  # that socket is closing; its client will resync

    async def _prune(self) -> None:
        """Unsubscribe from rooms without live local sockets (the listener stays)."""
        for room_id in [r for r, m in self.rooms.items() if not any(c.ready for c in m)]:
            del self.rooms[room_id]
        for room_id in self.subscribed - set(self.rooms):
            self.subscribed.discard(room_id)
            await self.pubsub.unsubscribe(_channel(room_id))
            if room_id in self.rooms and room_id not in self.subscribed:
                await self._subscribe(room_id)  # someone joined while we unsubscribed


_hub = per_loop(_Hub)


async def room_listen(*, room_id: int, session: Session) -> None:
    """Deliver this room's chat wake-ups to this socket (idempotent)."""
    await _hub().join(room_id, session)


def wakeup_frame(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``chat.message`` for one new message, ``chat.messages`` for several (in seq order)."""
    if len(messages) == 1:
        return {"type": "chat.message", **messages[0]}
    return {"type": "chat.messages", "messages": messages}


async def rooms_publish(messages_by_room: Mapping[int, Sequence[Mapping[str, Any]]]) -> None:
    """Publish chat wake-ups to every socket in these rooms, on every server.

    One Redis round trip; one pub/sub message, i.e. one frame per socket, per
    room, carrying that room's new messages in seq order.
    """
    async with get_redis().pipeline(transaction=False) as pipe:
        for room_id, messages in messages_by_room.items():
            pipe.publish(_channel(room_id), json.dumps(wakeup_frame(messages)))
        await pipe.execute()
