"""Who may enter a room's call at ``hello`` beyond membership (bans, locks, lobby).

The session calls ``admit`` before adding the peer to presence (and before a
resume, so a ban also holds for a socket resuming within the grace period).
Refusals are ``AppError`` subclasses with a ``close_code``: the session sends
the error frame and closes with that code. A newcomer to a room with a lobby
is parked instead (``Waiting``): the socket stays open, not ready, until a
moderator admits it (the handshake resumes) or rejects it (closed).
"""

import json
import secrets
from typing import Any, cast

from channels.db import database_sync_to_async
from django.contrib.auth.hashers import check_password

from videochat import ratelimit
from videochat.closecodes import CloseCode
from videochat.errors import AppError, RateLimited
from videochat.redis import get_redis

from . import keys, layer, presence, roles, selectors
from .protocol import Frame
from .session import Session

# A kicked member may not come straight back (a ban is for longer): 5 minutes,
# like a removal from a Meet call; long enough to cool down, short enough that a
# mistaken kick needs no moderator to undo it. For a guest it also holds for new
# guest sessions from the address the guest joined from (a new browser session
# is not a new person), as a guest's ban does.
KICK_COOLDOWN_S = 300
# Password guesses per client address and room (slow hash on top).
PASSWORD_LIMIT = ratelimit.Limit("room-password", rate=0.1, burst=5)


class Banned(AppError):
    code = "banned"
    message = "You are banned from this room."
    close_code = CloseCode.BANNED


class Kicked(Banned):
    """A short ban: a subclass, so whoever refuses a ban refuses a kick alike
    (the invite page answers 403 to both)."""

    code = "kicked"
    message = (
        f"You were removed from this room; you may come back in {KICK_COOLDOWN_S // 60} minutes."
    )
    close_code = CloseCode.KICKED


class NotMember(AppError):
    code = "forbidden"
    message = "You are no longer a member of this room."
    close_code = CloseCode.FORBIDDEN


class RoomLocked(AppError):
    code = "room_locked"
    message = "The room is locked: no one new may join right now."
    close_code = CloseCode.ROOM_LOCKED


class PasswordRequired(AppError):
    code = "password_required"
    message = "This room needs a password."
    close_code = CloseCode.PASSWORD_REQUIRED


class PasswordRateLimited(RateLimited):
    close_code = CloseCode.PASSWORD_REQUIRED


class LobbyRejected(AppError):
    code = "lobby_rejected"
    message = "A moderator did not let you in."
    close_code = CloseCode.FORBIDDEN


class Waiting(Exception):  # noqa: N818 - a state, not an error: the socket stays open
    """The socket waits in the lobby; not an AppError, so it is not closed."""


def client_ip(scope: dict[str, Any]) -> str:
    # daphne fills scope["client"] (from X-Forwarded-For with --proxy-headers).
    client = scope.get("client") or ("unknown", 0)
    return str(client[0])


async def admit(session: Session, frame: Frame) -> None:
    """Refuse entry by raising; membership was already checked at connect."""
    room_id, member = session.room_id, session.member
    redis = get_redis()
    # Read the revision before the database: a change after this read bumps
    # it, and the next frame re-reads (rooms.security.membership_recheck).
    # The client decodes responses (videochat/redis.py): a str or None.
    session.mod_revision = cast(str | None, await redis.get(keys.modrev_key(room_id)))
    state = await database_sync_to_async(selectors.admission_state)(
        room_id=room_id, member_id=member["id"], user_id=member["user_id"]
    )
    if state["role"] is None:
        raise NotMember()
    member["role"] = state["role"]
    if state["ban"] is not None:
        raise Banned(reason=state["ban"]["reason"], until=state["ban"]["until"])
    # A guest session opened from the kicked guest's address (before or after
    # the kick) is the same person as far as we can tell.
    kick = keys.kick_keys(
        room_id=room_id, member_id=member["id"], guest_address=state["guest_address"]
    )
    if await redis.exists(*kick):
        raise Kicked()
    if roles.moderates(state["role"]):
        await mods_join(session)
        return
    if session.lobby_admitted:
        return  # a moderator let this socket in from the lobby
    # Someone already in the call (another tab, or back within the resume
    # grace) is not new: locks, passwords and the lobby stop newcomers.
    if await _member_present(room_id=room_id, member_id=member["id"]):
        return
    if state["locked"]:
        raise RoomLocked()
    if state["password_hash"]:
        password = frame.get("password")
        if not isinstance(password, str) or not password:
            raise PasswordRequired()
        try:
            await ratelimit.hit(PASSWORD_LIMIT, f"{room_id}:{client_ip(session.scope)}")
        except RateLimited as exc:
            raise PasswordRateLimited(retry_after=exc.data["retry_after"]) from exc
        if not await database_sync_to_async(check_password)(password[:128], state["password_hash"]):
            raise PasswordRequired("Wrong password.", wrong=True)
    if state["lobby_enabled"]:
        await lobby_park(session, frame)
        raise Waiting()


async def _member_present(*, room_id: int, member_id: int) -> bool:
    return any(p["member_id"] == member_id for p in await presence.presence_list(room_id=room_id))


async def mods_join(session: Session) -> None:
    """Receive lobby knocks from now on (``mod.lobby_list`` gives those already waiting)."""
    room_id = session.room_id
    await layer.group_join(layer.moderators_group(room_id), session.channel_name)


async def mods_leave(session: Session) -> None:
    room_id = session.room_id
    await layer.group_leave(layer.moderators_group(room_id), session.channel_name)


# --- the lobby (Redis hash lobby:<room> of knock id -> JSON, shared by instances) --


async def lobby_park(session: Session, frame: Frame) -> None:
    room_id, member = session.room_id, session.member
    knock_id = secrets.token_urlsafe(9)
    knock = {
        "knock_id": knock_id,
        "member_id": member["id"],
        "display_name": member["display_name"],
        "role": member["role"],
        "channel": session.channel_name,
    }
    redis = get_redis()
    await redis.hset(keys.lobby_key(room_id), knock_id, json.dumps(knock))
    await redis.expire(keys.lobby_key(room_id), 86400)
    session.lobby_knock_id = knock_id
    session.lobby_frame = frame
    await session.reply({"type": "lobby.waiting", "knock_id": knock_id})
    await layer.to_moderators(room_id, {"type": "lobby.knock", **_public(knock)})


def _public(knock: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in knock.items() if k != "channel"}


async def lobby_list(*, room_id: int) -> list[dict[str, Any]]:
    raw = await get_redis().hgetall(keys.lobby_key(room_id))
    return [_public(json.loads(v)) for v in raw.values()]


async def lobby_get(*, room_id: int, knock_id: str) -> dict[str, Any] | None:
    raw = await get_redis().hget(keys.lobby_key(room_id), knock_id)
    return json.loads(raw) if raw else None


async def lobby_take(*, room_id: int, knock_id: str) -> dict[str, Any] | None:
    """Remove a knock; only the first of several deciding moderators gets it."""
    redis = get_redis()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hget(keys.lobby_key(room_id), knock_id)
        pipe.hdel(keys.lobby_key(room_id), knock_id)
        raw, removed = await pipe.execute()
    return json.loads(raw) if raw and removed else None
