"""Handlers for presence frames: heartbeats, media state, call telemetry."""

from videochat.closecodes import CloseCode
from videochat.errors import BadRequest, RateLimited

from . import calls, presence, telemetry
from .protocol import Frame, handles
from .session import Session

PRESENCE_TIMEOUT_S = presence.PRESENCE_TIMEOUT_S


@handles("ping")
async def ping(session: Session, frame: Frame) -> None:
    room_id = session.room_id
    # The heartbeat, then the room's reap (peers whose heartbeats stopped), in one
    # round trip.
    alive, gone = await presence.presence_touch_and_reap(
        room_id=room_id, peer_id=session.peer_id, timeout_s=presence.PRESENCE_TIMEOUT_S
    )
    await session.reply({"type": "pong", "t": frame.get("t"), "present": alive})
    await calls.announce_reaped(room_id, gone)


@handles("presence.update")
async def presence_update(session: Session, frame: Frame) -> None:
    changes = {k: frame[k] for k in ("audio", "video", "screen", "in_call") if k in frame}
    if not changes or not all(isinstance(v, bool) for v in changes.values()):
        raise BadRequest("presence.update takes booleans audio, video, screen, in_call.")
    state = None
    if changes.get("in_call") is True:
        # Entering the call takes a call seat (room_full if none is free: the
        # socket stays, for chat); leaving it (in_call false) frees the seat.
        state = await calls.call_enter(session)
        del changes["in_call"]
    elif changes.get("in_call") is False:
        state = await calls.call_leave(session)
        del changes["in_call"]
    if changes:
        state = await presence.presence_update(
            room_id=session.room_id, peer_id=session.peer_id, **changes
        )
    if state is not None:
        await session.broadcast({"type": "presence.update", "peer": state})


@handles("leave")
async def leave(session: Session, frame: Frame) -> None:
    """The user left on purpose: the others see it now, with no resume grace."""
    await calls.peer_leave(session, reason="left")
    await session.close(CloseCode.NORMAL)


@handles("call.stats")
async def call_stats(session: Session, frame: Frame) -> None:
    """Quality samples of this peer's links (docs/protocol.md, "Call telemetry").

    No reply when accepted: the samples are queued for MongoDB (rooms/telemetry.py).
    """
    if session.stats_bucket is None:
        session.stats_bucket = telemetry.FrameBucket()
    wait = session.stats_bucket.take()
    if wait:
        raise RateLimited(wait, f"At most one call.stats frame per {telemetry.RATE_INTERVAL_S} s.")
    samples = telemetry.samples_parse(frame)
    foreign = await telemetry.samples_accept(
        room_id=session.room_id,
        room_slug=session.room["slug"],
        from_peer=session.peer_id,
        samples=samples,
    )
    if foreign:
        raise telemetry.StatsPeerUnknown(peers=foreign)
