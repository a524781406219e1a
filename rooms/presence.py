"""Who is in a room's call right now, kept in Redis (shared by every instance).

The channel layer is no presence database: it forgets silently. Each room has
a hash ``presence:<room>`` of peer id -> JSON state and a sorted set
``presence:<room>:seen`` of peer id -> last heartbeat (Redis time, seconds).
"""

import json
from typing import TypedDict

from videochat.redis import get_redis


class PeerState(TypedDict):
    peer_id: str
    member_id: int
    display_name: str
    role: str
    audio: bool
    video: bool
    screen: bool


def _keys(room_id: int) -> tuple[str, str]:
    return f"presence:{int(room_id)}", f"presence:{int(room_id)}:seen"


# Add a peer unless the room is at capacity; atomic across instances.
_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and
   redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1e6, ARGV[1])
return 1
"""

_TOUCH = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1e6, ARGV[1])
return 1
"""

# Remove peers not seen for ARGV[1] seconds; returns their states.
_REAP = """
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) + tonumber(t[2]) / 1e6 - tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
local gone = {}
for _, peer in ipairs(stale) do
  local state = redis.call('HGET', KEYS[1], peer)
  redis.call('HDEL', KEYS[1], peer)
  redis.call('ZREM', KEYS[2], peer)
  if state then table.insert(gone, state) end
end
return gone
"""


async def presence_add(*, room_id: int, state: PeerState, capacity: int) -> bool:
    """Add or refresh ``state``; False when the room is full."""
    added = await get_redis().eval(
        _ADD, 2, *_keys(room_id), state["peer_id"], json.dumps(state), capacity
    )
    return bool(added)


async def presence_touch(*, room_id: int, peer_id: str) -> bool:
    """Record a heartbeat; False when the peer is no longer present."""
    return bool(await get_redis().eval(_TOUCH, 2, *_keys(room_id), peer_id))


async def presence_update(*, room_id: int, peer_id: str, **changes: bool) -> PeerState | None:
    key, _ = _keys(room_id)
    redis = get_redis()
    raw = await redis.hget(key, peer_id)
    if raw is None:
        return None
    state: PeerState = json.loads(raw)
    state.update(changes)  # type: ignore[typeddict-item]
    await redis.hset(key, peer_id, json.dumps(state))
    return state


async def presence_remove(*, room_id: int, peer_id: str) -> bool:
    key, seen = _keys(room_id)
    redis = get_redis()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hdel(key, peer_id)
        pipe.zrem(seen, peer_id)
        removed, _ = await pipe.execute()
    return bool(removed)


async def presence_list(*, room_id: int) -> list[PeerState]:
    key, _ = _keys(room_id)
    states = [json.loads(v) for v in (await get_redis().hgetall(key)).values()]
    return sorted(states, key=lambda s: (s["display_name"].lower(), s["peer_id"]))


async def presence_get(*, room_id: int, peer_id: str) -> PeerState | None:
    key, _ = _keys(room_id)
    raw = await get_redis().hget(key, peer_id)
    return json.loads(raw) if raw else None


async def presence_reap(*, room_id: int, timeout_s: float) -> list[PeerState]:
    """Drop peers whose heartbeats stopped; returns who was dropped."""
    gone = await get_redis().eval(_REAP, 2, *_keys(room_id), timeout_s)
    return [json.loads(g) for g in gone]
