"""Who is in a room's call right now, kept in Redis (shared by every instance).

The channel layer is no presence database: it forgets silently. Each room has
a hash ``presence:<room>`` of peer id -> JSON state and a sorted set
``presence:<room>:seen`` of peer id -> last heartbeat (Redis time, seconds).

Signaling needs to reach one peer's socket, and a resumed session has a new
socket: ``presence:<room>:chan`` maps peer id -> its current channel name
(absent while the peer is disconnected but inside its resume grace period).
Signals for a peer in grace wait in ``signal:<room>:<peer>`` until it resumes.
``resume:<room>:<peer>:opened`` holds when the socket that last resumed the
peer was opened (an older socket's late resume is refused).

These keys are this module's alone: other apps use the functions below (the
``_sync`` ones for workers, commands and metrics, on the caller's client).
"""

import json
from typing import Any, TypedDict, cast

import redis

from videochat.redis import get_redis

# A peer whose heartbeats stop for this long is removed (sockets that never
# fire close: a sleeping laptop, a dead NAT mapping). Clients ping every 10 s.
PRESENCE_TIMEOUT_S = 30


class PeerState(TypedDict):
    peer_id: str
    member_id: int
    display_name: str
    role: str
    audio: bool
    video: bool
    screen: bool
    # In the call (past the pre-join preview): only these peers get connections,
    # and only these hold one of the room's call seats (see seat_take).
    in_call: bool
    # When the hand went up (ISO-8601 UTC), None when down (rooms.gestures).
    hand_at: str | None


class SeatTaken(TypedDict):
    state: PeerState  # this peer, now in the call
    replaced: PeerState | None  # the same member's older peer, now out of the call


def _keys(room_id: int) -> tuple[str, str]:
    return f"presence:{int(room_id)}", f"presence:{int(room_id)}:seen"


def _chan_key(room_id: int) -> str:
    return f"presence:{int(room_id)}:chan"


def channel_key(room_id: int) -> str:
    """The hash of peer id -> the channel name of its socket (read by security.sockets_recheck)."""
    return _chan_key(room_id)


def _pending_key(room_id: int, peer_id: str) -> str:
    return f"signal:{int(room_id)}:{peer_id}"


def _opened_key(room_id: int, peer_id: str) -> str:
    return f"resume:{int(room_id)}:{peer_id}:opened"


# Add or refresh a peer. Presence takes no seat: a tab that previews or chats
# is present, and only entering the call (seat_take) counts against capacity.
_ADD = """
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1e6, ARGV[1])
return 1
"""

# Peer ARGV[1] enters the call: a seat is a present peer with in_call true, so
# leaving the call, the room or the heartbeat frees it with no second record to
# keep in step. One member holds one seat: the member's older peer in the call
# leaves it (its seat passes over, so capacity is not checked). Otherwise the
# room must have fewer than ARGV[2] seats taken, unless ARGV[3] is '1' (owners
# and moderators always enter). Returns {1, state, older state or ''}, {0} when
# full, {-1} when the peer is not present. Atomic across instances.
_SEAT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {-1} end
local me = cjson.decode(raw)
if me['in_call'] == true then return {1, raw, ''} end
local seated, older = 0, nil
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    local peer = cjson.decode(all[i + 1])
    if peer['in_call'] == true then
      if tonumber(peer['member_id']) == tonumber(me['member_id']) then
        older = peer
      else
        seated = seated + 1
      end
    end
  end
end
if older == nil and ARGV[3] ~= '1' and seated >= tonumber(ARGV[2]) then return {0} end
local was = ''
if older ~= nil then
  older['in_call'] = false
  was = cjson.encode(older)
  redis.call('HSET', KEYS[1], older['peer_id'], was)
end
me['in_call'] = true
raw = cjson.encode(me)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return {1, raw, was}
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
  redis.call('HDEL', KEYS[3], peer)
  if state then table.insert(gone, state) end
end
return gone
"""


async def presence_add(*, room_id: int, state: PeerState) -> None:
    """Add or refresh ``state`` (no seat: see ``seat_take``)."""
    await get_redis().eval(_ADD, 2, *_keys(room_id), state["peer_id"], json.dumps(state))


class PeerGone(LookupError):
    """The peer is no longer present (reaped, removed)."""


async def seat_take(*, room_id: int, peer_id: str, capacity: int, always: bool) -> SeatTaken | None:
    """Put a present peer in the call; None when every seat is taken.

    ``always``: an owner or moderator, who enters a full call. Raises
    ``PeerGone`` when the peer is not present.
    """
    key, _ = _keys(room_id)
    found = await get_redis().eval(_SEAT, 1, key, peer_id, capacity, "1" if always else "0")
    if found[0] == -1:
        raise PeerGone(peer_id)
    if found[0] == 0:
        return None
    _, raw, was = found
    return SeatTaken(state=json.loads(raw), replaced=json.loads(was) if was else None)


async def presence_touch_and_reap(
    *, room_id: int, peer_id: str, timeout_s: float
) -> tuple[bool, list[PeerState]]:
    """A heartbeat (False: the peer is no longer present), then the room's reap
    (presence_reap), in one round trip: every socket pings every 10 s, and two
    round trips a ping were most of an idle socket's cost (bench/RESULTS.md)."""
    key, seen = _keys(room_id)
    async with get_redis().pipeline(transaction=False) as pipe:
        pipe.eval(_TOUCH, 2, key, seen, peer_id)
        pipe.eval(_REAP, 3, key, seen, _chan_key(room_id), timeout_s)
        alive, gone = await pipe.execute()
    return bool(alive), [json.loads(g) for g in gone]


# Change some fields of a peer's state in one step: a read-modify-write from
# Python could write back an in_call that seat_take just cleared (a second tab
# taking the seat while the first toggles its microphone): two seats, one
# member; or write back a peer the reaper removed in between, present again
# with no heartbeat entry, so no reaper would ever remove it. A peer without
# its heartbeat entry is not updated either.
_UPDATE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return nil end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return nil end
local state = cjson.decode(raw)
for k, v in pairs(cjson.decode(ARGV[2])) do state[k] = v end
raw = cjson.encode(state)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return raw
"""


async def presence_update(*, room_id: int, peer_id: str, **changes: bool | str) -> PeerState | None:
    """Change some fields of a present peer's state; None when it is not present."""
    raw = await get_redis().eval(_UPDATE, 2, *_keys(room_id), peer_id, json.dumps(changes))
    return json.loads(raw) if raw else None


# Raise peer ARGV[1]'s hand at ARGV[2] unless it is up already (the first
# time stands). Only a peer in the call has a hand. Returns {1, state} raised,
# {0, state} already up, {-1} gone, {-2} not in the call.
_HAND_RAISE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {-1} end
local state = cjson.decode(raw)
if state['in_call'] ~= true then return {-2} end
if type(state['hand_at']) == 'string' then return {0, raw} end
state['hand_at'] = ARGV[2]
raw = cjson.encode(state)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return {1, raw}
"""

# Lower peer ARGV[1]'s hand. Returns {1, state} lowered, {0, state} it was
# not up, {-1} gone.
_HAND_LOWER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {-1} end
local state = cjson.decode(raw)
if type(state['hand_at']) ~= 'string' then return {0, raw} end
state['hand_at'] = cjson.null
raw = cjson.encode(state)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return {1, raw}
"""


class NotInCall(LookupError):
    """The peer is present but not in the call."""


async def hand_raise(*, room_id: int, peer_id: str, at: str) -> tuple[bool, PeerState]:
    """(raised now, the state): False when the hand was up already (its first ``at`` stands).

    Raises ``PeerGone`` or ``NotInCall``.
    """
    key, _ = _keys(room_id)
    found = await get_redis().eval(_HAND_RAISE, 1, key, peer_id, at)
    if found[0] == -1:
        raise PeerGone(peer_id)
    if found[0] == -2:
        raise NotInCall(peer_id)
    return found[0] == 1, json.loads(found[1])


async def hand_lower(*, room_id: int, peer_id: str) -> tuple[bool, PeerState]:
    """(lowered now, the state): False when the hand was not up. Raises ``PeerGone``."""
    key, _ = _keys(room_id)
    found = await get_redis().eval(_HAND_LOWER, 1, key, peer_id)
    if found[0] == -1:
        raise PeerGone(peer_id)
    return found[0] == 1, json.loads(found[1])


async def presence_remove(*, room_id: int, peer_id: str) -> bool:
    key, seen = _keys(room_id)
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.hdel(key, peer_id)
        pipe.zrem(seen, peer_id)
        pipe.hdel(_chan_key(room_id), peer_id)
        pipe.delete(_pending_key(room_id, peer_id))
        removed, *_ = await pipe.execute()
    return bool(removed)


async def presence_count(*, room_id: int) -> int:
    key, _ = _keys(room_id)
    return int(await get_redis().hlen(key))


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
    gone = await get_redis().eval(_REAP, 3, *_keys(room_id), _chan_key(room_id), timeout_s)
    return [json.loads(g) for g in gone]


# --- channels, grace and resume ----------------------------------------------

# Take over a present peer for member ARGV[2] with channel ARGV[3], opened at
# ARGV[4] (seconds); refused for a socket opened before the socket that last
# resumed the peer (KEYS[4] holds when that one was opened). A reconnect whose
# hello was delayed (a stalled path) otherwise took the peer back from the
# newer, live socket and closed it with 4005, which the client treats as
# final. Returns nil (peer gone or not theirs), or {state, previous channel or
# '', 1 taken over | 0 refused}.
_RESUME = """
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

# The socket ARGV[2] of peer ARGV[1] went away without saying goodbye. If it is
# still the peer's current socket, forget it and backdate the heartbeat so the
# reaper removes the peer ARGV[3] seconds from now unless it resumes.
_UNBIND = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZADD', KEYS[2], now - tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[1])
return 1
"""

PENDING_LIMIT = 200


async def presence_bind(*, room_id: int, peer_id: str, channel: str) -> None:
    """Record the socket (channel name) that currently serves ``peer_id``."""
    await get_redis().hset(_chan_key(room_id), peer_id, channel)


async def presence_channel(*, room_id: int, peer_id: str) -> str | None:
    # The client decodes responses (videochat/redis.py): a str, not bytes.
    return cast(str | None, await get_redis().hget(_chan_key(room_id), peer_id))


async def presence_is_bound(*, room_id: int, peer_id: str, channel: str) -> bool:
    return await presence_channel(room_id=room_id, peer_id=peer_id) == channel


class Resumed(TypedDict):
    state: PeerState
    old_channel: str | None  # the socket that served the peer; None while in grace
    taken: bool  # False: a newer socket already resumed the peer; nothing changed


async def presence_resume(
    *, room_id: int, peer_id: str, member_id: int, channel: str, opened_at: float
) -> Resumed | None:
    """Move a still-present peer of ``member_id`` to ``channel`` (opened at ``opened_at``).

    None when the peer was reaped or belongs to someone else.
    """
    found = await get_redis().eval(
        _RESUME,
        4,
        *_keys(room_id),
        _chan_key(room_id),
        _opened_key(room_id, peer_id),
        peer_id,
        member_id,
        channel,
        repr(opened_at),
        _OPENED_TTL_S,
    )
    if not found:
        return None
    raw, old, taken = found
    return Resumed(state=json.loads(raw), old_channel=old or None, taken=bool(int(taken)))


async def presence_unbind(
    *, room_id: int, peer_id: str, channel: str, grace_s: float, timeout_s: float
) -> bool:
    """Start the grace period of a peer whose socket ``channel`` dropped.

    False when another socket already took the peer over (a resume raced the
    old socket's close) or the peer is gone: then nothing is to be done.
    """
    started = await get_redis().eval(
        _UNBIND, 3, *_keys(room_id), _chan_key(room_id), peer_id, channel, grace_s, timeout_s
    )
    return bool(started)


async def pending_push(*, room_id: int, peer_id: str, frame: dict, ttl_s: float) -> None:
    """Hold a signal for a peer in grace; delivered when it resumes."""
    key = _pending_key(room_id, peer_id)
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.rpush(key, json.dumps(frame))
        pipe.ltrim(key, -PENDING_LIMIT, -1)
        pipe.expire(key, max(1, int(ttl_s) + 1))
        await pipe.execute()


async def pending_take(*, room_id: int, peer_id: str) -> list[dict]:
    key = _pending_key(room_id, peer_id)
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.lrange(key, 0, -1)
        pipe.delete(key)
        raw, _ = await pipe.execute()
    return [json.loads(r) for r in raw]


# --- for workers, commands and metrics (sync, on the caller's client) ---------
#
# Celery, rq and the metrics view have their own sync Redis clients (their own
# timeouts); they read presence through these, never through its keys.


def presence_room_ids_sync(*, client: redis.Redis) -> list[int]:
    """Rooms with peers present (or in grace), in id order."""
    found = set()
    for key in client.scan_iter(match="presence:*:seen", count=500):
        room = str(key).split(":")[1]
        if room.isdigit():
            found.add(int(room))
    return sorted(found)


def presence_counts_sync(*, client: redis.Redis) -> dict[int, int]:
    """Peers present per room id, for every room with anyone present (one scan, one pipeline)."""
    room_ids = []
    for key in map(str, client.scan_iter(match="presence:*", count=1000)):
        parts = key.split(":")
        if len(parts) == 2 and parts[1].isdigit():  # not :seen / :chan
            room_ids.append(int(parts[1]))
    with client.pipeline(transaction=False) as pipe:
        for room_id in room_ids:
            pipe.hlen(_keys(room_id)[0])
        counts = pipe.execute()
    return {room_id: int(n) for room_id, n in zip(room_ids, counts, strict=True) if int(n)}


def presence_states_sync(*, client: redis.Redis, room_id: int) -> list[PeerState]:
    """The room's present peers, in no particular order."""
    key, _ = _keys(room_id)
    return [json.loads(raw) for raw in client.hvals(key)]


def presence_member_ids_sync(*, client: redis.Redis, room_id: int) -> set[int]:
    """Members with a peer present in the room (in the call, in preview or in grace)."""
    key, _ = _keys(room_id)
    online = set()
    for raw in client.hvals(key):
        try:
            online.add(int(json.loads(raw)["member_id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return online


def presence_stale_sync(*, client: redis.Redis, room_id: int, timeout_s: float) -> list[str]:
    """Peers of the room whose last heartbeat is older than ``timeout_s`` (Redis time)."""
    _, seen = _keys(room_id)
    secs, micros = client.time()
    cutoff = secs + micros / 1e6 - timeout_s
    return [str(p) for p in client.zrangebyscore(seen, "-inf", cutoff)]


def presence_channel_queue(pipe: Any, *, room_id: int, peer_id: str) -> None:
    """Queue a read of the peer's current channel on ``pipe`` (a pipeline another
    check shares, so the whole check stays one round trip); its result is the
    channel name or None, as ``presence_channel``'s."""
    pipe.hget(_chan_key(room_id), peer_id)
