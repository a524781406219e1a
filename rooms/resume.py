"""Session resume: a socket that drops may come back within a grace period and
keep its peer id, so the others see no leave/join and keep their connections.

The token is an HMAC of (room, peer, member) under SECRET_KEY: nothing to
store, it only works for the member who got it, and only while the peer is
still present (the reaper ends that after the grace period).
"""

import json
from typing import Any

from django.utils.crypto import constant_time_compare, salted_hmac

from videochat.closecodes import CloseCode
from videochat.errors import AppError
from videochat.redis import get_redis

from . import keys, layer, presence
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


# presence_resume's take-over, refused for a socket opened before the socket
# that last resumed the peer (KEYS[4] holds when that one was opened). A
# reconnect whose hello was delayed (a stalled path) otherwise took the peer
# back from the newer, live socket and closed it with 4005, which the client
# treats as final. Returns nil (peer gone or not theirs), or {state, previous
# channel or '', 1 taken over | 0 refused}.
_RESUME_NEWEST = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return nil end
if tonumber(cjson.decode(raw)['member_id']) ~= tonumber(ARGV[2]) then return nil end
local old = redis.call('HGET', KEYS[3], ARGV[1]) or ''
local newest = tonumber(redis.call('GET', KEYS[4]) or '0')
if tonumber(ARGV[4]) < newest then return {raw, old, 0} end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1e6, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[5])
return {raw, old, 1}
"""
# Longer than any call; refreshed by every resume.
_OPENED_TTL_S = 86400


async def _take_over(
    *, room_id: int, peer_id: str, member_id: int, channel: str, opened_at: float
) -> tuple[presence.PeerState, str | None, bool] | None:
    presence_key, seen_key = presence._keys(room_id)
    found = await get_redis().eval(
        _RESUME_NEWEST,
        4,
        presence_key,
        seen_key,
        presence._chan_key(room_id),
        keys.resume_opened_key(room_id, peer_id),
        peer_id,
        member_id,
        channel,
        repr(opened_at),
        _OPENED_TTL_S,
    )
    if not found:
        return None
    raw, old, taken = found
    return json.loads(raw), (old or None), bool(int(taken))


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
    found = await _take_over(
        room_id=room_id,
        peer_id=peer_id,
        member_id=member_id,
        channel=session.channel_name,
        opened_at=session.opened_at,
    )
    if found is None:
        return None
    state, old_channel, taken = found
    if not taken:
        raise Superseded()
    if old_channel and old_channel != session.channel_name:
        # The old socket looked alive to the server (a stalled network never
        # closes): retire it; its disconnect sees it no longer owns the peer.
        await layer.to_peer(old_channel, layer.peer_close(CloseCode.REPLACED))
    return state
