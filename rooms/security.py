"""Guards the room socket applies to every connection and frame.

- per-type frame size limits (daphne's ``--websocket-max-message-size`` is the
  outer bound for all of them);
- a per-client-address frame rate limit on top of the per-user one, shared by
  every instance through Redis (many accounts from one address cannot flood);
- the sender's role and bans re-read whenever the room's moderation revision
  changes, so a demoted moderator or a banned member loses access on the very
  next frame on every instance, even if the channel-layer event telling their
  socket was lost (it is at-most-once);
- the per-member and per-user groups through which kick, ban, role changes,
  logout and password changes reach a socket;
- a periodic re-check of every open socket (``socket_recheck``), because each
  of those notices can be lost and a silent socket sends no frame to check on.
"""

import asyncio
from collections.abc import Sequence
from importlib import import_module
from typing import Any, Literal, cast

import structlog
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

from videochat import ratelimit
from videochat.closecodes import CloseCode
from videochat.errors import AppError, BadRequest, RateLimited
from videochat.redis import get_redis

from . import admission, keys, layer, presence, roles, selectors
from .models import Role
from .protocol import HANDLER_LIMITS, Frame
from .session import Session

log = structlog.get_logger(__name__)

IP_FRAME_LIMIT = ratelimit.Limit(
    "frames-ip", rate=settings.FRAME_RATE_IP_PER_S, burst=settings.FRAME_RATE_IP_BURST
)
# Per user (per guest membership) for every frame after hello; a frame type
# may add its own limit (``@handles(..., limit=...)``, e.g. chat.send).
USER_FRAME_LIMIT = ratelimit.Limit(
    "frames", rate=settings.FRAME_RATE_PER_S, burst=settings.FRAME_RATE_BURST
)
# New sockets per client address: a reconnect storm of a whole office fits,
# a script opening sockets in a loop (each costs database reads) does not.
IP_CONNECT_LIMIT = ratelimit.Limit(
    "connect-ip", rate=settings.CONNECT_RATE_IP_PER_S, burst=settings.CONNECT_RATE_IP_BURST
)

# Largest accepted frame per type, in characters of JSON text. Exact names
# first, then the prefix before the first dot; anything else gets DEFAULT.
MAX_FRAME_CHARS = {
    "hello": 4096,
    "ping": 256,
    "leave": 256,
    "presence": 512,
    "mod": 2048,
    "chat": 32768,  # 4000 characters of body even when every one is \u-escaped twice
    "signal": 65536,  # SDP offers with many candidates are large
    "call.stats": 16384,  # 16 samples (rooms.telemetry.MAX_FRAME_CHARS)
}
DEFAULT_MAX_FRAME_CHARS = 4096


# Frames refused in a row (over the address' rate) after which the socket is
# closed with 4429: an honest client slows down after the first refusal (it
# is told retry_after); one that keeps going is a flood.
FLOOD_STRIKES = 100


class Flooding(RateLimited):
    """The socket keeps sending over its address' rate: answered, then closed."""

    close_code = CloseCode.TOO_MANY


class AddressGate:
    """Charges every frame of one socket to its client address, before any answer.

    Valid or not (too large, bad JSON, binary, unknown type), each frame costs
    a token of the address' bucket (shared by every server through Redis),
    and after hello one of the user's, before any handler runs or any error
    is answered; a frame type's own limit (chat.send) rides in the same
    script call, so a frame costs one Redis round trip before its handler.
    The first refusal is answered with ``rate_limited`` and ``retry_after``;
    until then later frames are dropped unparsed (``admits``) without asking
    Redis or answering (a flood costs neither Redis nor output);
    ``FLOOD_STRIKES`` refusals in a row close the socket.
    """

    def __init__(self, *, address: str, room_id: int) -> None:
        self.address = address
        self.revision_key = keys.modrev_key(room_id)
        self.refused_until = 0.0
        self.strikes = 0

    def admits(self) -> bool:
        """False for a frame inside a refusal already answered: drop it, unparsed.

        Raises Flooding (answer and close) at ``FLOOD_STRIKES`` in a row.
        """
        now = asyncio.get_running_loop().time()
        if now < self.refused_until:
            self._strike(self.refused_until - now)
            return False
        return True

    async def charge(
        self, *, user: str | None, own: tuple[ratelimit.Limit, str] | None = None
    ) -> tuple[str | None, RateLimited | None]:
        """(The room's moderation revision, the refusal of ``own`` or None).

        ``user``: the sender's rate key once it said hello; its bucket is
        charged in the same call. ``own``: the frame type's own bucket
        (``own_limit``), charged only when the address and user buckets were;
        its refusal is the frame's answer and no strike against the address.
        Raises RateLimited (answer it) or Flooding (answer and close).
        """
        buckets = [(IP_FRAME_LIMIT, self.address)]
        if user is not None:
            buckets.append((USER_FRAME_LIMIT, user))
        try:
            revision, refused = await ratelimit.hit_then(
                buckets, [own] if own is not None else [], read=self.revision_key
            )
        except RateLimited as exc:
            retry_after = float(exc.data["retry_after"])
            self.refused_until = asyncio.get_running_loop().time() + retry_after
            self._strike(retry_after)
            raise
        self.strikes = 0
        return revision, refused

    def _strike(self, retry_after: float) -> None:
        self.strikes += 1
        if self.strikes >= FLOOD_STRIKES:
            raise Flooding(retry_after, "Too many frames from this address; closing.")


def own_limit(session: Session, frame: Frame, *, size: int) -> tuple[ratelimit.Limit, str] | None:
    """The frame type's own bucket (``@handles(..., limit=...)``) to charge with
    its address (AddressGate.charge), after hello; None when the type has none
    or the frame is refused for its size anyway (which spends none of it)."""
    frame_type = frame.get("type")
    if not session.ready or not isinstance(frame_type, str) or frame_type not in HANDLER_LIMITS:
        return None
    if size > frame_limit(frame_type):
        return None
    return HANDLER_LIMITS[frame_type], session.rate_key


class FrameTooLarge(AppError):
    code = "too_large"
    message = "The frame is too large for its type."


def frame_limit(frame_type: object) -> int:
    if not isinstance(frame_type, str):
        return DEFAULT_MAX_FRAME_CHARS
    if frame_type in MAX_FRAME_CHARS:
        return MAX_FRAME_CHARS[frame_type]
    return MAX_FRAME_CHARS.get(frame_type.split(".", 1)[0], DEFAULT_MAX_FRAME_CHARS)


class TooManyConnections(RateLimited):
    close_code = CloseCode.TOO_MANY


async def connection_refusal(address: str) -> TooManyConnections | None:
    """The refusal to answer (then close with 4429) when the address opens too many."""
    try:
        await ratelimit.hit(IP_CONNECT_LIMIT, address)
    except RateLimited as exc:
        return TooManyConnections(retry_after=exc.data["retry_after"])
    return None


async def socket_opened(session: Session) -> None:
    channel = session.channel_name
    await layer.group_join(layer.member_group(session.member_id), channel)
    user_id = session.user_id
    if user_id is not None:
        await layer.group_join(layer.user_group(user_id), channel)
        # The client decodes responses (videochat/redis.py): a str or None.
        session.auth_revision = cast(str | None, await get_redis().get(keys.authrev_key(user_id)))


async def socket_closed(session: Session) -> None:
    member = session.member
    channel = session.channel_name
    await layer.group_leave(layer.member_group(member["id"]), channel)
    if member["user_id"] is not None:
        await layer.group_leave(layer.user_group(member["user_id"]), channel)
    await admission.mods_leave(session)
    knock_id = session.lobby_knock_id
    if knock_id and not session.ready:
        # Gave up waiting in the lobby: the moderators' list drops the knock.
        if await admission.lobby_take(room_id=session.room_id, knock_id=knock_id):
            await layer.to_moderators(
                session.room_id,
                {"type": "lobby.resolved", "knock_id": knock_id, "decision": "left"},
            )


async def check_frame(
    session: Session,
    frame: Frame,
    *,
    size: int,
    revision: str | None,
    refused: RateLimited | None = None,
) -> bool:
    """Raise for a frame to refuse with an error; False when the socket was closed.

    ``revision`` is the room's moderation revision and ``refused`` the refusal
    of the type's own limit, both from the frame's charge (AddressGate.charge).
    """
    limit = frame_limit(frame.get("type"))
    if size > limit:
        raise FrameTooLarge(limit=limit)
    if refused is not None:
        raise refused  # over its type's own limit (chat.send)
    if frame.get("type") == "hello" and session.lobby_knock_id:
        if not session.ready:
            # One knock per socket: another hello would queue a second one.
            raise BadRequest("Already waiting in the lobby.")
    if session.ready:
        return await membership_recheck(session, revision=revision)
    return True


async def membership_recheck(session: Session, *, revision: str | None) -> bool:
    room_id, member = session.room_id, session.member
    if revision == session.mod_revision:
        return True
    session.mod_revision = revision
    state = await database_sync_to_async(selectors.admission_state)(
        room_id=room_id, member_id=member["id"], user_id=member["user_id"]
    )
    if state["role"] is None:
        await session.reply(admission.NotMember().as_frame())
        await session.close(admission.NotMember.close_code)
        return False
    if state["ban"] is not None:
        ban = state["ban"]
        await session.reply(
            {"type": "mod.banned", "reason": ban["reason"], "until": ban["until"], "by": None}
        )
        await session.close(CloseCode.BANNED)
        return False
    if state["role"] != member["role"]:
        await role_changed(session, state["role"])
    return True


async def role_changed(session: Session, role: str) -> None:
    """This socket's member got a new role: powers and the lobby feed follow at once."""
    if session.role == role:
        return
    session.member["role"] = role
    if roles.moderates(role):
        await admission.mods_join(session)
        knocks = await admission.lobby_list(room_id=session.room_id)
        await session.reply({"type": "lobby.list", "knocks": knocks})
    else:
        await admission.mods_leave(session)
    await session.reply({"type": "member.you", "role": role})
    if session.ready:
        state = await presence.presence_update(
            room_id=session.room_id, peer_id=session.peer_id, role=role
        )
        if state is not None:
            await session.broadcast({"type": "presence.update", "peer": state})


async def mod_event(session: Session, event: dict[str, Any]) -> bool:
    """Moderation news for this socket (``mod.event``); True when a moderator
    admitted it from the lobby: the consumer then resumes its handshake."""
    kind = event.get("event")
    if kind == "role.changed":
        if session.role != Role.OWNER:
            await role_changed(session, str(event["role"]))
        return False
    if session.ready or event.get("knock_id") != session.lobby_knock_id:
        return False  # not (or no longer) waiting with that knock
    if kind == "lobby.admitted":
        session.lobby_admitted = True
        return True
    if kind == "lobby.rejected":
        rejected = admission.LobbyRejected(reason=event.get("reason") or "")
        await session.reply(rejected.as_frame())
        await session.close(admission.LobbyRejected.close_code)
    return False


def on_user_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Logout ends every room socket of the account, on every instance."""
    if user is None:
        return
    layer.to_user_on_commit(
        user.pk,
        layer.peer_close(
            CloseCode.UNAUTHENTICATED, {"type": "session.ended", "reason": "logged_out"}
        ),
    )


# --- sockets that should be gone -------------------------------------------------


async def sockets_recheck(sessions: Sequence[Session]) -> None:
    """Close those of these ready sockets that should no longer be open.

    Run every SOCKET_CHECK_INTERVAL_S for every socket (rooms/sweep.py; never
    relied on alone: each case has a faster notice, which may be lost). One
    Redis round trip for all of them: each socket still serves its peer (not
    reaped for missing heartbeats, not taken over by a resume), its room's
    moderation revision (bans, removal, role), and its account's password
    revision.
    """
    peers: dict[int, list[str]] = {}
    revision_keys: dict[str, None] = {}  # ordered and unique
    for session in sessions:
        peers.setdefault(session.room_id, []).append(session.peer_id)
        revision_keys[keys.modrev_key(session.room_id)] = None
        if session.user_id is not None:
            revision_keys[keys.authrev_key(session.user_id)] = None
    async with get_redis().pipeline(transaction=False) as pipe:
        for room_id, peer_ids in peers.items():
            pipe.hmget(presence.channel_key(room_id), peer_ids)
        pipe.mget(list(revision_keys))
        *channels_by_room, revisions = await pipe.execute()
    channel_of = {
        (room_id, peer_id): channel
        for (room_id, peer_ids), channels in zip(peers.items(), channels_by_room, strict=True)
        for peer_id, channel in zip(peer_ids, channels, strict=True)
    }
    revision_of = dict(zip(revision_keys, revisions, strict=True))
    results = await asyncio.gather(
        *(
            _recheck(
                session,
                channel=channel_of[session.room_id, session.peer_id],
                revision=revision_of[keys.modrev_key(session.room_id)],
                auth=(
                    [revision_of[keys.authrev_key(session.user_id)]]
                    if session.user_id is not None
                    else []
                ),
            )
            for session in sessions
        ),
        return_exceptions=True,
    )
    for session, result in zip(sessions, results, strict=True):
        if isinstance(result, Exception):  # Redis or the database away: next time
            log.warning(
                "room.recheck_failed",
                room=session.room_id,
                peer=session.peer_id,
                exc_info=result,
            )


async def _recheck(
    session: Session, *, channel: str | None, revision: str | None, auth: list
) -> None:
    if not session.ready:
        return  # gone while the others were looked up
    if channel != session.channel_name:
        # Reaped (the room saw it leave) or resumed elsewhere (the 4005 was lost).
        await session.close(CloseCode.REPLACED if channel else CloseCode.GONE)
        return
    if not await membership_recheck(session, revision=revision):
        return
    if auth and auth[0] != session.auth_revision:
        session.auth_revision = auth[0]
        await session_recheck(session)


SessionVerdict = Literal["valid", "gone", "invalid"]
# The account's own tab changing the password gets a new session key a moment
# after the password is saved (update_session_auth_hash); until then its old
# session looks invalid. Look again after this long before ending it.
SESSION_SETTLE_S = 1.0


def session_verdict(*, session_key: str | None, user_id: int) -> SessionVerdict:
    """Whether the login session a socket connected with still authenticates it.

    ``gone``: no such session any more (its key was cycled by a password
    change in this browser, or it was flushed): the browser may hold a new
    one, so the client should reconnect. ``invalid``: the session exists but
    no longer matches the account (the password changed elsewhere): ended.
    """
    if not session_key:
        return "gone"
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if not store.exists(session_key):
        return "gone"
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user_id):
        return "invalid"
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return "invalid"
    stored = data.get(HASH_SESSION_KEY) or ""
    return "valid" if constant_time_compare(stored, user.get_session_auth_hash()) else "invalid"


async def session_recheck(session: Session) -> None:
    """Close a socket whose login session a password change ended."""
    user_id = session.user_id
    login = session.scope.get("session")
    if user_id is None or login is None:
        return  # a guest: no account, no password
    verdict = database_sync_to_async(session_verdict)
    state = await verdict(session_key=login.session_key, user_id=user_id)
    if state == "invalid":
        await asyncio.sleep(SESSION_SETTLE_S)
        state = await verdict(session_key=login.session_key, user_id=user_id)
    if state == "gone":
        await session.close(CloseCode.GONE)
    elif state == "invalid":
        await session.reply({"type": "session.ended", "reason": "password_changed"})
        await session.close(CloseCode.UNAUTHENTICATED)


def on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A password change ends the account's other sessions' sockets, on every instance.

    Django marks a new password on the instance until save() returns, so a
    post_save sees it. After commit: bump the revision every socket re-checks
    (a lost notice is caught by the next socket_recheck), then tell them now.
    """
    if created or getattr(instance, "_password", None) is None:
        return
    user_id = instance.pk

    keys.authrev_bump_on_commit(user_id=user_id)
    layer.to_user_on_commit(user_id, layer.session_check())
