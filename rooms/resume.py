"""Session resume: a socket that drops may come back within a grace period and
keep its peer id, so the others see no leave/join and keep their connections.

The token is an HMAC of (room, peer, member) under SECRET_KEY: nothing to
store, it only works for the member who got it, and only while the peer is
still present (the reaper ends that after the grace period).
"""

from typing import Any

from django.utils.crypto import constant_time_compare, salted_hmac

from videochat.closecodes import CloseCode
from videochat.errors import AppError

from . import layer, presence
from .session import Session

_SALT = "huddle.rooms.resume"


def resume_token(*, room_id: int, peer_id: str, member_id: int) -> str:
    value = f"{int(room_id)}:{peer_id}:{int(member_id)}"
    return salted_hmac(_SALT, value, algorithm="sha256").hexdigest()


def resume_token_valid(*, room_id: int, peer_id: str, member_id: int, token: str) -> bool:
    expected = resume_token(room_id=room_id, peer_id=peer_id, member_id=member_id)
    return constant_time_compare(expected, token)


class Superseded(AppError):
    """A resume from a socket older than the one that already resumed the peer."""

    code = "superseded"
    message = "A newer connection of this session already resumed it."
    close_code = CloseCode.REPLACED


async def session_resume(session: Session, claim: Any) -> presence.PeerState | None:
    """Take over the peer named in ``hello.resume``; None means join afresh.

    A claim that is malformed, forged, for another member, or for a peer that
    was already reaped is not an error: the client simply gets a new peer id.
    A claim from a socket opened before the one that already resumed the peer
    raises Superseded: the newer claim wins, and the live socket stays.
    """
    if not isinstance(claim, dict):
        return None
    peer_id, token = claim.get("peer_id"), claim.get("token")
    if not isinstance(peer_id, str) or not isinstance(token, str) or len(peer_id) > 64:
        return None
    room_id, member_id = session.room_id, session.member_id
    if not resume_token_valid(room_id=room_id, peer_id=peer_id, member_id=member_id, token=token):
        return None
    found = await presence.presence_resume(
        room_id=room_id,
        peer_id=peer_id,
        member_id=member_id,
        channel=session.channel_name,
        opened_at=session.opened_at,
    )
    if found is None:
        return None
    if not found["taken"]:
        raise Superseded()
    state, old_channel = found["state"], found["old_channel"]
    if old_channel and old_channel != session.channel_name:
        # The old socket looked alive to the server (a stalled network never
        # closes): retire it; its disconnect sees it no longer owns the peer.
        await layer.to_peer(old_channel, layer.peer_close(CloseCode.REPLACED))
    return state
