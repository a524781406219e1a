"""Raise hand and reactions: small gestures of people in the call.

A hand is part of the peer's presence state (``hand_at``), so a late joiner's
``welcome`` shows the queue and a resumed socket keeps its hand; it goes down
when its peer leaves the call (rooms.calls.announce_hand_down). Reactions
are not stored: one broadcast each, rate-limited per peer. Only a peer in the
call may send either (``not_in_call``). See "Raise hand and reactions" in
docs/protocol.md.
"""

from datetime import UTC, datetime

from videochat import ratelimit
from videochat.errors import BadRequest, Forbidden, NotFound, NotInCall

from . import presence, roles
from .protocol import Frame, handles
from .session import Session

# The six reactions a client may send, exactly these code points (the heart
# carries its emoji variation selector, U+2764 U+FE0F).
REACTIONS = frozenset(
    {"\U0001f44d", "\U0001f44f", "\U0001f602", "\U0001f62e", "\u2764\ufe0f", "\U0001f389"}
)
# Per peer (one socket, and the sockets resuming it): 5 at once, then 1 per 2 s.
REACTION_LIMIT = ratelimit.Limit("reaction", rate=0.5, burst=5)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def _in_call(session: Session) -> presence.PeerState:
    state = await presence.presence_get(room_id=session.room_id, peer_id=session.peer_id)
    if state is None or not state["in_call"]:
        raise NotInCall()
    return state


def _raised_frame(state: presence.PeerState) -> Frame:
    return {
        "type": "hand.raised",
        "peer_id": state["peer_id"],
        "member_id": state["member_id"],
        "name": state["display_name"],
        "at": state["hand_at"],
    }


@handles("hand.raise")
async def hand_raise(session: Session, frame: Frame) -> None:
    try:
        raised, state = await presence.hand_raise(
            room_id=session.room_id, peer_id=session.peer_id, at=_now()
        )
    except (presence.PeerGone, presence.NotInCall):
        raise NotInCall() from None
    if raised:
        await session.broadcast(_raised_frame(state))
    else:
        # Up already: the room heard it; the sender alone is told again, same ``at``.
        await session.reply(_raised_frame(state))


@handles("hand.lower")
async def hand_lower(session: Session, frame: Frame) -> None:
    await _in_call(session)
    target = frame.get("peer_id", session.peer_id)
    if not isinstance(target, str) or not 0 < len(target) <= 64:
        raise BadRequest("'peer_id' must be a peer id.", field="peer_id")
    if target != session.peer_id and not roles.moderates(session.role):
        raise Forbidden("Only the owner and moderators lower someone else's hand.")
    try:
        lowered, _ = await presence.hand_lower(room_id=session.room_id, peer_id=target)
    except presence.PeerGone:
        raise NotFound("No such peer in this room.", peer_id=target) from None
    if lowered:
        await session.broadcast(
            {"type": "hand.lowered", "peer_id": target, "by_member_id": session.member_id}
        )


@handles("reaction.send")
async def reaction_send(session: Session, frame: Frame) -> None:
    state = await _in_call(session)
    emoji = frame.get("emoji")
    if not isinstance(emoji, str) or emoji not in REACTIONS:
        raise BadRequest(
            "'emoji' must be one of " + " ".join(sorted(REACTIONS)) + ".", field="emoji"
        )
    await ratelimit.hit(REACTION_LIMIT, f"{session.room_id}:{session.peer_id}")
    await session.broadcast(
        {
            "type": "reaction",
            "peer_id": state["peer_id"],
            "member_id": state["member_id"],
            "name": state["display_name"],
            "emoji": emoji,
        }
    )
