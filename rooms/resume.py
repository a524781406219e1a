"""Session resume: a socket that drops may come back within a grace period and
keep its peer id, so the others see no leave/join and keep their connections.

The token is an HMAC of (room, peer, member) under SECRET_KEY: nothing to
store, it only works for the member who got it, and only while the peer is
still present (the reaper ends that after the grace period).
"""

from typing import TYPE_CHECKING, Any

from django.utils.crypto import constant_time_compare, salted_hmac

from . import presence
from .protocol import CloseCode

if TYPE_CHECKING:
    from .consumers import RoomConsumer

_SALT = "huddle.rooms.resume"


def resume_token(*, room_id: int, peer_id: str, member_id: int) -> str:
    value = f"{int(room_id)}:{peer_id}:{int(member_id)}"
    return salted_hmac(_SALT, value, algorithm="sha256").hexdigest()


def resume_token_valid(*, room_id: int, peer_id: str, member_id: int, token: str) -> bool:
    expected = resume_token(room_id=room_id, peer_id=peer_id, member_id=member_id)
    return constant_time_compare(expected, token)


async def session_resume(consumer: "RoomConsumer", claim: Any) -> presence.PeerState | None:
    """Take over the peer named in ``hello.resume``; None means join afresh.

    A claim that is malformed, forged, for another member, or for a peer that
    was already reaped is not an error: the client simply gets a new peer id.
    """
    if not isinstance(claim, dict):
        return None
    peer_id, token = claim.get("peer_id"), claim.get("token")
    if not isinstance(peer_id, str) or not isinstance(token, str) or len(peer_id) > 64:
        return None
    room_id, member_id = consumer.room["id"], consumer.member["id"]
    if not resume_token_valid(room_id=room_id, peer_id=peer_id, member_id=member_id, token=token):
        return None
    found = await presence.presence_resume(
        room_id=room_id, peer_id=peer_id, member_id=member_id, channel=consumer.channel_name
    )
    if found is None:
        return None
    state, old_channel = found
    if old_channel and old_channel != consumer.channel_name:
        # The old socket looked alive to the server (a stalled network never
        # closes): retire it; its disconnect sees it no longer owns the peer.
        await consumer.channel_layer.send(
            old_channel, {"type": "peer.close", "code": CloseCode.REPLACED}
        )
    return state
