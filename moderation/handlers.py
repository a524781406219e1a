"""Handlers for ``mod.*`` frames: decode the frame, call one service.

Each service (moderation/services.py) authorizes against the sender's role as
the database has it now (never the role cached on the socket), writes and
audits, then tells the sockets concerned after commit. See docs/protocol.md.
"""

from typing import Any

from channels.db import database_sync_to_async

from rooms import admission
from rooms.protocol import Frame, handles
from rooms.session import Session
from videochat.errors import BadRequest

from . import services


def _member_id(frame: Frame) -> int:
    member_id = frame.get("member_id")
    if not isinstance(member_id, int) or isinstance(member_id, bool):
        raise BadRequest("member_id must be an integer.")
    return member_id


def _knock_id(frame: Frame) -> str:
    knock_id = frame.get("knock_id")
    if not isinstance(knock_id, str) or not 1 <= len(knock_id) <= 32:
        raise BadRequest("knock_id must be a string.")
    return knock_id


async def _call(service: Any, session: Session, **kwargs: Any) -> Any:
    return await database_sync_to_async(service)(
        room_id=session.room_id, actor_member_id=session.member_id, **kwargs
    )


@handles("mod.kick")
async def kick(session: Session, frame: Frame) -> None:
    await _call(
        services.member_kick,
        session,
        target_member_id=_member_id(frame),
        reason=frame.get("reason", ""),
    )


@handles("mod.ban")
async def ban(session: Session, frame: Frame) -> None:
    await _call(
        services.ban_create,
        session,
        target_member_id=_member_id(frame),
        reason=frame.get("reason", ""),
        minutes=frame.get("minutes"),
    )


@handles("mod.mute")
async def mute(session: Session, frame: Frame) -> None:
    """``request: true`` asks the member to mute; otherwise the server mutes them."""
    await _call(
        services.member_mute,
        session,
        target_member_id=_member_id(frame),
        request=frame.get("request", False),
    )


@handles("mod.mute_all")
async def mute_all(session: Session, frame: Frame) -> None:
    await _call(services.room_mute_all, session)


@handles("mod.lock")
async def lock(session: Session, frame: Frame) -> None:
    await _call(services.room_set_access, session, locked=frame.get("locked"))


@handles("mod.password")
async def password(session: Session, frame: Frame) -> None:
    if "password" not in frame:
        raise BadRequest("password: a string to set, or null to clear.")
    await _call(services.room_set_access, session, password=frame["password"])


@handles("mod.lobby")
async def lobby(session: Session, frame: Frame) -> None:
    await services.lobby_open(
        room_id=session.room_id, actor_member_id=session.member_id, enabled=frame.get("enabled")
    )


@handles("mod.lobby_list")
async def lobby_list(session: Session, frame: Frame) -> None:
    """Who is waiting now (a moderator's page asks after welcome)."""
    await _call(services.moderator_check, session)
    knocks = await admission.lobby_list(room_id=session.room_id)
    await session.reply({"type": "lobby.list", "knocks": knocks})


@handles("mod.admit")
async def lobby_admit(session: Session, frame: Frame) -> None:
    await services.lobby_decide(
        room_id=session.room_id,
        actor_member_id=session.member_id,
        knock_id=_knock_id(frame),
        admitted=True,
    )


@handles("mod.reject")
async def lobby_reject(session: Session, frame: Frame) -> None:
    await services.lobby_decide(
        room_id=session.room_id,
        actor_member_id=session.member_id,
        knock_id=_knock_id(frame),
        admitted=False,
        reason=services.reason_check(frame.get("reason", "")),
    )


@handles("mod.set_role")
async def set_role(session: Session, frame: Frame) -> None:
    """Owner only. The target's sockets get their new powers through their member group."""
    await _call(
        services.member_set_role,
        session,
        target_member_id=_member_id(frame),
        role=frame.get("role"),
    )


@handles("mod.hide_message")
async def hide_message(session: Session, frame: Frame) -> None:
    seq = frame.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadRequest("seq must be a positive integer.")
    await _call(services.message_hide_by_moderator, session, seq=seq)
