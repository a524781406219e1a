"""Peers entering and leaving the room and its call, announced to the room
(live) and to its webhooks (durable).

Every path that adds or removes a peer, or moves it in or out of the call,
goes through here. The room's sockets hear every peer (``presence.join`` /
``presence.leave``: a tab in the pre-join preview or chatting is present).
The webhooks hear the call (docs/operations.md): ``participant.joined`` when
a peer enters the call, ``participant.left`` when a peer in the call leaves
it by any path (leave button, disconnect, timeout and expiry, kick, ban),
``call.started`` / ``call.ended`` when the call goes from nobody to somebody
and back. A peer leaving the call but not the room also lowers its hand
(``hand.lowered``, rooms.gestures).
"""

from typing import Any

import structlog
from channels.db import database_sync_to_async
from django.conf import settings

from deliveries.services import room_events_emit
from videochat.errors import RoomFull
from videochat.redis import get_redis

from . import keys, layer, presence, roles
from .session import Session

log = structlog.get_logger(__name__)


@database_sync_to_async
def _emit(room_id: int, events: list[tuple[str, dict[str, Any]]]) -> None:
    room_events_emit(room_id=room_id, events=events)


async def _tell_webhooks(room_id: int, events: list[tuple[str, dict[str, Any]]]) -> None:
    # The socket must not fail because a webhook could not be queued: the
    # deliveries module logs and spools what it cannot enqueue.
    try:
        await _emit(room_id, events)
    except Exception:  # noqa: BLE001
        log.exception("room.webhook_emit_failed", room=room_id, events=[e for e, _ in events])


def _who(peer: presence.PeerState) -> dict[str, Any]:
    return {
        "peer_id": peer["peer_id"],
        "member_id": peer["member_id"],
        "display_name": peer["display_name"],
    }


async def _in_call_count(room_id: int) -> int:
    return sum(1 for peer in await presence.presence_list(room_id=room_id) if peer["in_call"])


async def _entered_call(room_id: int, peer: presence.PeerState, *, moved: bool) -> None:
    events: list[tuple[str, dict[str, Any]]] = [("participant.joined", _who(peer))]
    if not moved and await _in_call_count(room_id) == 1:
        events.insert(0, ("call.started", {"by": _who(peer)}))
    await _tell_webhooks(room_id, events)


async def _left_call(
    room_id: int, peer: presence.PeerState | None, *, peer_id: str, reason: str, moved: bool
) -> None:
    who = _who(peer) if peer else {"peer_id": peer_id}
    events: list[tuple[str, dict[str, Any]]] = [("participant.left", {**who, "reason": reason})]
    if not moved and await _in_call_count(room_id) == 0:
        events.append(("call.ended", {"reason": reason}))
        # The next call's telemetry gets a call id of its own (rooms/telemetry.py).
        await get_redis().delete(keys.call_key(room_id))
    await _tell_webhooks(room_id, events)


async def announce_join(room_id: int, peer: presence.PeerState, *, exclude: str) -> None:
    """A new peer in the room (not yet in the call, unless it entered at hello).

    ``exclude``: the joining socket's channel (its welcome already lists it).
    """
    await layer.to_room(room_id, {"type": "presence.join", "peer": peer}, exclude=exclude)


async def announce_leave(
    room_id: int, peer: presence.PeerState | None, *, peer_id: str, reason: str
) -> None:
    """A peer was removed from the room; ``peer`` is its removed state when known."""
    await layer.to_room(room_id, {"type": "presence.leave", "peer_id": peer_id, "reason": reason})
    if peer is None or peer["in_call"]:
        await _left_call(room_id, peer, peer_id=peer_id, reason=reason, moved=False)


async def announce_call_moved(room_id: int, older: presence.PeerState) -> None:
    """The member entered the call from another tab: the older peer left the call.

    Its socket is told why (it keeps chat), through its current channel or, in
    its resume grace, held for the resume; the room sees it leave the call.
    """
    peer_id = older["peer_id"]
    frame = {"type": "call.left", "reason": "joined_elsewhere"}
    channel = await presence.presence_channel(room_id=room_id, peer_id=peer_id)
    if channel is not None:
        await layer.to_peer(channel, layer.peer_frame(frame))
    else:
        await presence.pending_push(
            room_id=room_id, peer_id=peer_id, frame=frame, ttl_s=settings.CALL_RESUME_GRACE_S
        )
    older = await announce_hand_down(room_id, peer_id) or older
    await layer.to_room(room_id, {"type": "presence.update", "peer": older})
    # The member stays in the call (from its newer tab): the call goes on.
    await _left_call(room_id, older, peer_id=peer_id, reason="joined_elsewhere", moved=True)


async def announce_hand_down(room_id: int, peer_id: str) -> presence.PeerState | None:
    """The peer leaves the call but stays in the room: its raised hand goes down.

    Returns the peer's state, hand down (None if the peer is gone: then its
    ``presence.leave`` ends the hand).
    """
    try:
        lowered, state = await presence.hand_lower(room_id=room_id, peer_id=peer_id)
    except presence.PeerGone:
        return None
    if lowered:
        await layer.to_room(
            room_id,
            {"type": "hand.lowered", "peer_id": peer_id, "by_member_id": state["member_id"]},
        )
    return state


async def reap_and_announce(
    room_id: int, *, timeout_s: float = presence.PRESENCE_TIMEOUT_S
) -> list[presence.PeerState]:
    """Drop peers whose heartbeats stopped (or whose resume grace ran out) and
    announce each leave to the room and its webhooks; returns those dropped.

    The one reaper: every peer's ping (with its heartbeat, handlers.ping), a
    grace timer, a refused seat and the ``presence_expire`` maintenance job
    (rooms nobody pings) all call this.
    """
    gone = await presence.presence_reap(room_id=room_id, timeout_s=timeout_s)
    await announce_reaped(room_id, gone)
    return gone


async def announce_reaped(room_id: int, gone: list[presence.PeerState]) -> None:
    """Announce the leaves of peers a reap dropped (reap_and_announce, a ping's reap)."""
    for peer in gone:
        await announce_leave(room_id, peer, peer_id=peer["peer_id"], reason="timeout")


async def call_enter(session: Session) -> presence.PeerState | None:
    """Enter the call: this socket's peer takes one of the room's call seats.

    Returns the peer's state, now in the call (None if the peer is gone),
    or raises ``RoomFull``. A seat is for the call, not the socket: a tab
    that previews or chats holds none; a member's second tab entering the
    call takes the first one's seat, whose call ends (its chat stays);
    owners and moderators always get a seat.

    Seats of peers that went away without a goodbye (a server killed
    mid-call, a close that failed under load) are freed by anyone's
    heartbeat; in a full room nobody may be left to send one, so a
    refused seat first drops the stale peers and tries once more.
    """
    room_id, capacity = session.room_id, session.room["capacity"]
    before = await presence.presence_get(room_id=room_id, peer_id=session.peer_id)
    if before is None:
        return None
    if before["in_call"]:
        return before  # already in: nothing changes, nothing to announce

    async def take() -> presence.SeatTaken | None:
        return await presence.seat_take(
            room_id=room_id,
            peer_id=session.peer_id,
            capacity=capacity,
            always=roles.moderates(session.role),
        )

    try:
        taken = await take()
        if taken is None:
            await reap_and_announce(room_id)
            taken = await take()
    except presence.PeerGone:
        return None
    if taken is None:
        raise RoomFull(capacity=capacity)
    moved = taken["replaced"] is not None
    if taken["replaced"] is not None:
        await announce_call_moved(room_id, taken["replaced"])
    await _entered_call(room_id, taken["state"], moved=moved)
    return taken["state"]


async def call_leave(session: Session) -> presence.PeerState | None:
    """This socket's peer leaves the call but stays in the room (for chat):
    its seat is free, its hand goes down. Returns its state (None if gone)."""
    room_id, peer_id = session.room_id, session.peer_id
    before = await presence.presence_get(room_id=room_id, peer_id=peer_id)
    # Out of the call, hand down: the room hears hand.lowered before the update.
    await announce_hand_down(room_id, peer_id)
    state = await presence.presence_update(room_id=room_id, peer_id=peer_id, in_call=False)
    if state is not None and before is not None and before["in_call"]:
        await _left_call(room_id, state, peer_id=peer_id, reason="left_call", moved=False)
    return state


async def peer_leave(session: Session, *, reason: str) -> None:
    """This socket's peer leaves the room now, with no resume grace."""
    session.ready = False
    room_id, peer_id = session.room_id, session.peer_id
    await layer.group_leave(layer.room_group(room_id), session.channel_name)
    owner = await presence.presence_channel(room_id=room_id, peer_id=peer_id)
    if owner not in (None, session.channel_name):
        return  # a newer socket resumed this peer
    state = await presence.presence_get(room_id=room_id, peer_id=peer_id)
    if await presence.presence_remove(room_id=room_id, peer_id=peer_id):
        await announce_leave(room_id, state, peer_id=peer_id, reason=reason)
    log.info("room.left", room=session.room["slug"], peer=peer_id, reason=reason)


async def drop_member_peers(room_id: int, *, member_ids: set[int], reason: str) -> None:
    """Take these members' peers out of the room now, even a socket in its resume
    grace (a kick or ban: their sockets are being closed as well)."""
    for peer in await presence.presence_list(room_id=room_id):
        if peer["member_id"] not in member_ids:
            continue
        if await presence.presence_remove(room_id=room_id, peer_id=peer["peer_id"]):
            await announce_leave(room_id, peer, peer_id=peer["peer_id"], reason=reason)


async def mute_peers(room_id: int, *, member_ids: set[int] | None) -> None:
    """Mark peers muted in presence now, so everyone's view changes at once.

    ``member_ids`` None: everyone but the owner and moderators.
    """
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
            await layer.to_room(room_id, {"type": "presence.update", "peer": state})
