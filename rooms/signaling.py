"""Call signaling: offer, answer and ICE candidates go to ONE peer, never the room.

The target must be present in the sender's room (Redis presence, shared by
every instance); its current socket is looked up there and reached with
``channel_layer.send``. A target inside its resume grace period has no socket:
the frame waits in Redis and is delivered when it resumes. See the "Calls"
section of docs/protocol.md.
"""

from typing import Any

from channels.exceptions import ChannelFull
from django.conf import settings

from videochat import metrics
from videochat.errors import AppError, BadRequest

from . import layer, presence, turn
from .protocol import Frame, handles
from .session import Session

# An SDP of a 6-way mesh with simulcast stays well under this; the socket's
# own 64 KiB frame limit still applies on top.
MAX_SDP_CHARS = 48_000
MAX_CANDIDATE_CHARS = 2_000


class UnknownPeer(AppError):
    code = "unknown_peer"
    message = "No such peer in this room."


class PeerBusy(AppError):
    code = "peer_busy"
    message = "The peer cannot take more messages right now; try again."


def _target(session: Session, frame: Frame) -> str:
    to = frame.get("to")
    if not isinstance(to, str) or not 0 < len(to) <= 64:
        raise BadRequest("'to' must be a peer id.")
    if to == session.peer_id:
        raise BadRequest("A peer cannot signal itself.")
    return to


def _sdp(frame: Frame) -> str:
    sdp = frame.get("sdp")
    if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_CHARS:
        raise BadRequest(f"'sdp' must be a non-empty string under {MAX_SDP_CHARS} characters.")
    return sdp


async def relay(session: Session, *, to: str, frame: dict[str, Any]) -> None:
    """Deliver ``frame`` (already validated, with ``from``) to peer ``to`` only."""
    room_id = session.room_id
    if await presence.presence_get(room_id=room_id, peer_id=to) is None:
        metrics.signal(frame["type"], "refused_unknown_peer")
        raise UnknownPeer(peer_id=to)
    channel = await presence.presence_channel(room_id=room_id, peer_id=to)
    if channel is None:
        # Reconnecting: keep it for the resume rather than lose the negotiation.
        await presence.pending_push(
            room_id=room_id, peer_id=to, frame=frame, ttl_s=settings.CALL_RESUME_GRACE_S
        )
        metrics.signal(frame["type"], "held")
        return
    try:
        await layer.to_peer(channel, layer.peer_frame(frame))
    except ChannelFull as exc:
        metrics.signal(frame["type"], "refused_busy")
        raise PeerBusy(peer_id=to) from exc
    metrics.signal(frame["type"], "relayed")


@handles("signal.offer")
async def signal_offer(session: Session, frame: Frame) -> None:
    to = _target(session, frame)
    out: dict[str, Any] = {"type": "signal.offer", "from": session.peer_id, "sdp": _sdp(frame)}
    for flag in ("restart", "fresh"):  # ICE restart; a new connection replacing a stuck one
        if frame.get(flag) is True:
            out[flag] = True
    await relay(session, to=to, frame=out)


@handles("signal.answer")
async def signal_answer(session: Session, frame: Frame) -> None:
    to = _target(session, frame)
    await relay(
        session,
        to=to,
        frame={"type": "signal.answer", "from": session.peer_id, "sdp": _sdp(frame)},
    )


@handles("signal.ice")
async def signal_ice(session: Session, frame: Frame) -> None:
    to = _target(session, frame)
    candidate = frame.get("candidate")
    # null marks the end of candidates (RTCPeerConnection.addIceCandidate(null)).
    if candidate is not None:
        if not isinstance(candidate, dict) or not isinstance(candidate.get("candidate"), str):
            raise BadRequest("'candidate' must be an RTCIceCandidateInit object or null.")
        if len(candidate["candidate"]) > MAX_CANDIDATE_CHARS:
            raise BadRequest("The candidate is too long.")
        candidate = {
            "candidate": candidate["candidate"],
            "sdpMid": candidate.get("sdpMid") if isinstance(candidate.get("sdpMid"), str) else None,
            "sdpMLineIndex": candidate.get("sdpMLineIndex")
            if isinstance(candidate.get("sdpMLineIndex"), int)
            else None,
        }
    await relay(
        session,
        to=to,
        frame={"type": "signal.ice", "from": session.peer_id, "candidate": candidate},
    )


@handles("turn.refresh")
async def turn_refresh(session: Session, frame: Frame) -> None:
    await session.reply(
        {"type": "turn.credentials", **turn.ice_config_for(user_key=session.rate_key)}
    )
