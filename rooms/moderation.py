"""Handlers for ``mod.*`` frames: keeping order in a call.

Each handler authorizes against the sender's role as the database has it now
(inside the service's transaction, never the role cached on the socket), writes
one AuditLog row through the service, then tells the sockets concerned. The
kicked or banned socket is reached through its member group on any instance;
the others see the result through room broadcasts.
"""

from typing import Any

from channels.db import database_sync_to_async

from videochat.errors import BadRequest, Conflict, NotFound
from videochat.text import text_check

from . import admission, calls, layer, presence, roles, services
from .models import AuditLog
from .protocol import Frame, handles
from .session import Session

REASON_MAX = 200


def _reason(frame: Frame) -> str:
    reason = frame.get("reason", "")
    if not isinstance(reason, str) or len(reason) > REASON_MAX:
        raise BadRequest(f"reason must be a string of at most {REASON_MAX} characters.")
    return text_check(reason, field="reason").strip()


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


async def _act(session: Session, action: str, **kwargs: Any) -> services.ModResult:
    return await database_sync_to_async(services.moderation_act)(
        room_id=session.room_id, actor_member_id=session.member_id, action=action, **kwargs
    )


async def _act_check(session: Session) -> None:
    """Authorize a read against the current role (no audit row for looking)."""
    await database_sync_to_async(services.moderator_check)(
        room_id=session.room_id, actor_member_id=session.member_id
    )


async def _drop_member_presence(session: Session, *, member_id: int, reason: str) -> None:
    """Take the member's peers out of the call now, even a socket in its resume grace."""
    room_id = session.room_id
    for peer in await presence.presence_list(room_id=room_id):
        if peer["member_id"] != member_id:
            continue
        if await presence.presence_remove(room_id=room_id, peer_id=peer["peer_id"]):
            await calls.announce_leave(room_id, peer, peer_id=peer["peer_id"], reason=reason)


async def _announce(
    session: Session, action: str, result: services.ModResult, **extra: Any
) -> None:
    target = result["target"]
    await session.broadcast(
        {
            "type": "mod.action",
            "action": action,
            "by": result["actor_name"],
            "target": {"member_id": target["member_id"], "display_name": target["display_name"]}
            if target
            else None,
            **extra,
        }
    )


# --- removing people ---------------------------------------------------------------


@handles("mod.kick")
async def kick(session: Session, frame: Frame) -> None:
    reason = _reason(frame)
    # The service holds the kick (a reload is refused for a while) and closes
    # the kicked member's sockets after commit.
    result = await database_sync_to_async(services.member_kick)(
        room_id=session.room_id,
        actor_member_id=session.member_id,
        target_member_id=_member_id(frame),
        reason=reason,
    )
    for member_id in result["member_ids"]:
        await _drop_member_presence(session, member_id=member_id, reason="kicked")
    await _announce(session, "kick", result, reason=reason)


@handles("mod.ban")
async def ban(session: Session, frame: Frame) -> None:
    reason = _reason(frame)
    # The service closes the banned member's sockets after commit.
    result = await database_sync_to_async(services.ban_create)(
        room_id=session.room_id,
        actor_member_id=session.member_id,
        target_member_id=_member_id(frame),
        reason=reason,
        minutes=frame.get("minutes"),
    )
    for member_id in result["member_ids"]:
        await _drop_member_presence(session, member_id=member_id, reason="banned")
    await _announce(session, "ban", result, reason=reason)


# --- microphones -------------------------------------------------------------------


@handles("mod.mute")
async def mute(session: Session, frame: Frame) -> None:
    """``request: true`` asks the member to mute; otherwise the server mutes them."""
    request = frame.get("request", False)
    if not isinstance(request, bool):
        raise BadRequest("request must be a boolean.")
    action = AuditLog.Action.MUTE_REQUEST if request else AuditLog.Action.MUTE
    result = await _act(session, action, target_member_id=_member_id(frame))
    target = result["target"]
    assert target is not None
    kind = "mod.mute_request" if request else "mod.muted"
    await layer.to_member(
        target["member_id"], layer.peer_frame({"type": kind, "by": result["actor_name"]})
    )
    if not request:
        await _mute_peers(session, member_ids={target["member_id"]})
    await _announce(session, "mute_request" if request else "mute", result)


@handles("mod.mute_all")
async def mute_all(session: Session, frame: Frame) -> None:
    result = await _act(session, AuditLog.Action.MUTE_ALL)
    await _mute_peers(session, member_ids=None)
    # Clients of participants and guests switch their microphone off on this.
    await session.broadcast({"type": "mod.mute_all", "by": result["actor_name"]})


async def _mute_peers(session: Session, *, member_ids: set[int] | None) -> None:
    """Mark peers muted in presence now, so everyone's view changes at once."""
    room_id = session.room_id
    for peer in await presence.presence_list(room_id=room_id):
        if member_ids is None:
            if roles.moderates(peer["role"]):
                continue
        elif peer["member_id"] not in member_ids:
            continue
        if not peer["audio"]:
            continue
        state = await presence.presence_update(
            room_id=room_id, peer_id=peer["peer_id"], audio=False
        )
        if state is not None:
            await session.broadcast({"type": "presence.update", "peer": state})


# --- who may come in -------------------------------------------------------------------


async def _set_access(session: Session, **change: Any) -> dict[str, Any]:
    return await database_sync_to_async(services.room_set_access)(
        room_id=session.room_id, actor_member_id=session.member_id, **change
    )


@handles("mod.lock")
async def lock(session: Session, frame: Frame) -> None:
    await _set_access(session, locked=frame.get("locked"))


@handles("mod.password")
async def password(session: Session, frame: Frame) -> None:
    if "password" not in frame:
        raise BadRequest("password: a string to set, or null to clear.")
    await _set_access(session, password=frame["password"])


@handles("mod.lobby")
async def lobby(session: Session, frame: Frame) -> None:
    enabled = frame.get("enabled")
    await _set_access(session, lobby_enabled=enabled)
    if enabled is False:
        # Nobody is left knocking at a door that is now open.
        for knock in await admission.lobby_list(room_id=session.room_id):
            await _decide(session, knock["knock_id"], admitted=True, reason="")


@handles("mod.lobby_list")
async def lobby_list(session: Session, frame: Frame) -> None:
    """Who is waiting now (a moderator's page asks after welcome)."""
    await _act_check(session)
    knocks = await admission.lobby_list(room_id=session.room_id)
    await session.reply({"type": "lobby.list", "knocks": knocks})


@handles("mod.admit")
async def lobby_admit(session: Session, frame: Frame) -> None:
    await _decide(session, _knock_id(frame), admitted=True, reason="")


@handles("mod.reject")
async def lobby_reject(session: Session, frame: Frame) -> None:
    await _decide(session, _knock_id(frame), admitted=False, reason=_reason(frame))


async def _decide(session: Session, knock_id: str, *, admitted: bool, reason: str) -> None:
    room_id = session.room_id
    knock = await admission.lobby_get(room_id=room_id, knock_id=knock_id)
    if knock is None:
        raise NotFound("Nobody is waiting with that knock.", knock_id=knock_id)
    result = await _act(
        session,
        AuditLog.Action.LOBBY_ADMIT if admitted else AuditLog.Action.LOBBY_REJECT,
        target_member_id=knock["member_id"],
        detail={"reason": reason} if reason else None,
    )
    if await admission.lobby_take(room_id=room_id, knock_id=knock_id) is None:
        raise Conflict("Another moderator already decided.", knock_id=knock_id)
    event = "lobby.admitted" if admitted else "lobby.rejected"
    await layer.to_peer(knock["channel"], layer.mod_event(event, knock_id=knock_id, reason=reason))
    await layer.to_moderators(
        room_id,
        {
            "type": "lobby.resolved",
            "knock_id": knock_id,
            "decision": "admitted" if admitted else "rejected",
            "by": result["actor_name"],
        },
    )


# --- roles and chat ----------------------------------------------------------------


@handles("mod.set_role")
async def set_role(session: Session, frame: Frame) -> None:
    """Owner only. The target's sockets get their new powers through their member group."""
    await database_sync_to_async(services.member_set_role)(
        room_id=session.room_id,
        actor_member_id=session.member_id,
        target_member_id=_member_id(frame),
        role=frame.get("role"),
    )


@handles("mod.hide_message")
async def hide_message(session: Session, frame: Frame) -> None:
    seq = frame.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadRequest("seq must be a positive integer.")
    # messaging.services.message_hide broadcasts chat.hidden after commit.
    await database_sync_to_async(services.message_hide_by_moderator)(
        room_id=session.room_id, actor_member_id=session.member_id, seq=seq
    )
