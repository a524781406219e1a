"""Every message this project puts on the channel layer, and who receives it.

The one door to the channel layer (STYLE.md: one module builds every
channel-layer message and names its recipients). The layer is at most once:
a message here is a wake-up or a request to one socket, never a record.

Recipients, each a function here: ``to_room`` (every socket of a room),
``to_moderators`` (sockets of its owner and moderators), ``to_peer`` (one
socket, by channel name; raises ``ChannelFull``), ``to_member`` (every socket
of one membership: all its tabs), ``to_user`` (every room socket of one
account). Services inside a transaction use the ``*_on_commit`` variants, so
no client hears of a row that rolls back.

Messages (the ``type`` a consumer method receives): ``room.frame`` (send this
frame unless you are ``exclude``), ``peer.frame`` (send this frame),
``peer.close`` (send the frame if any, then close with ``code``), ``mod.event``
(moderation news for one socket), ``session.check`` (re-check the login).
"""

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = structlog.get_logger(__name__)

Message = dict[str, Any]
Frame = dict[str, Any]


# --- groups: names built only from validated ids ------------------------------------


def room_group(room_id: int) -> str:
    """Every socket in a room."""
    return f"room.{int(room_id)}"


def moderators_group(room_id: int) -> str:
    """Sockets of a room's owner and moderators (lobby knocks go only to them)."""
    return f"mods.{int(room_id)}"


def member_group(member_id: int) -> str:
    """Every socket of one membership (all its tabs): kick, ban and role changes reach it."""
    return f"member.{int(member_id)}"


def user_group(user_id: int) -> str:
    """Every room socket of one account, in any room: logout closes them."""
    return f"user.{int(user_id)}"


async def group_join(group: str, channel: str) -> None:
    await get_channel_layer().group_add(group, channel)


async def group_leave(group: str, channel: str) -> None:
    await get_channel_layer().group_discard(group, channel)


# --- messages ---------------------------------------------------------------------


def room_frame(frame: Frame, *, exclude: str | None = None) -> Message:
    return {"type": "room.frame", "frame": frame, "exclude": exclude}


def peer_frame(frame: Frame) -> Message:
    return {"type": "peer.frame", "frame": frame}


def peer_close(code: int, frame: Frame | None = None) -> Message:
    message: Message = {"type": "peer.close", "code": code}
    if frame is not None:
        message["frame"] = frame
    return message


def mod_event(event: str, **data: Any) -> Message:
    return {"type": "mod.event", "event": event, **data}


def session_check() -> Message:
    return {"type": "session.check"}


# --- recipients (async, for sockets and jobs) -------------------------------------


async def to_room(room_id: int, frame: Frame, *, exclude: str | None = None) -> None:
    """``frame`` to everyone in the room but the socket ``exclude`` (a channel name)."""
    await get_channel_layer().group_send(room_group(room_id), room_frame(frame, exclude=exclude))


async def to_moderators(room_id: int, frame: Frame) -> None:
    await get_channel_layer().group_send(moderators_group(room_id), room_frame(frame))


async def to_peer(channel: str, message: Message) -> None:
    """One socket. Raises ``ChannelFull`` (``group_send`` would drop silently)."""
    await get_channel_layer().send(channel, message)


async def to_member(member_id: int, message: Message) -> None:
    await get_channel_layer().group_send(member_group(member_id), message)


async def to_user(user_id: int, message: Message) -> None:
    await get_channel_layer().group_send(user_group(user_id), message)


# --- the same, after the current transaction commits (for services) ---------------


def _on_commit(what: str, send: Callable[[], Awaitable[None]]) -> None:
    async def sending() -> None:
        await send()

    def run() -> None:
        # The record is committed and decides; a lost wake-up is repaired by
        # the client's next sync or recheck. So a layer failure is logged.
        try:
            async_to_sync(sending)()
        except Exception:  # noqa: BLE001
            log.warning("layer.send_failed", to=what, exc_info=True)

    transaction.on_commit(run)


def to_room_on_commit(room_id: int, frame: Frame) -> None:
    _on_commit(room_group(room_id), lambda: to_room(room_id, frame))


def to_moderators_on_commit(room_id: int, frame: Frame) -> None:
    _on_commit(moderators_group(room_id), lambda: to_moderators(room_id, frame))


def to_peer_on_commit(channel: str, message: Message) -> None:
    _on_commit("peer", lambda: to_peer(channel, message))


def to_member_on_commit(member_id: int, message: Message) -> None:
    _on_commit(member_group(member_id), lambda: to_member(member_id, message))


def to_user_on_commit(user_id: int, message: Message) -> None:
    _on_commit(user_group(user_id), lambda: to_user(user_id, message))
