"""Presence changes are atomic, and other apps read presence through its API
(rooms/presence.py), on real Redis."""

import json

import pytest
import redis
from django.conf import settings

from rooms import presence


def _state(peer_id: str, member_id: int) -> presence.PeerState:
    return presence.PeerState(
        peer_id=peer_id,
        member_id=member_id,
        display_name=peer_id,
        role="member",
        audio=True,
        video=True,
        screen=False,
        in_call=True,
        hand_at=None,
    )


class _ReapAfterFirstCall:
    """The room's Redis client, with the reaper running right after the first
    command a caller sends: the interleaving a read-then-write update loses to."""

    def __init__(self, real, room_id: int) -> None:
        self.real, self.room_id, self.reaped = real, room_id, False

    def __getattr__(self, name):
        attr = getattr(self.real, name)
        if self.reaped or not callable(attr):
            return attr

        async def call(*args, **kwargs):
            result = await attr(*args, **kwargs)
            if not self.reaped:
                self.reaped = True
                # Everyone's heartbeat is older than "now + 60 s".
                await presence.presence_reap(room_id=self.room_id, timeout_s=-60)
            return result

        return call


async def test_an_update_racing_the_reaper_never_brings_a_peer_back_without_a_heartbeat(
    monkeypatch,
):
    room_id = 9101
    await presence.presence_add(room_id=room_id, state=_state("p1", 1))
    real = presence.get_redis()
    racing = _ReapAfterFirstCall(real, room_id)
    monkeypatch.setattr(presence, "get_redis", lambda: racing)

    await presence.presence_update(room_id=room_id, peer_id="p1", audio=False)

    assert racing.reaped
    # Reaped means gone for good: not in the room's peers, so no heartbeat
    # entry is needed (a peer present without one would never be reaped).
    key, seen = f"presence:{room_id}", f"presence:{room_id}:seen"
    assert await real.hkeys(key) == []
    assert await real.zrange(seen, 0, -1) == []
    monkeypatch.undo()
    assert await presence.presence_list(room_id=room_id) == []


async def test_an_update_of_a_peer_without_a_heartbeat_entry_changes_nothing():
    room_id = 9102
    await presence.presence_add(room_id=room_id, state=_state("p1", 1))
    await presence.get_redis().zrem(f"presence:{room_id}:seen", "p1")
    assert await presence.presence_update(room_id=room_id, peer_id="p1", audio=False) is None
    assert (await presence.presence_get(room_id=room_id, peer_id="p1"))["audio"] is True


async def test_an_update_of_a_present_peer_changes_only_the_given_fields():
    room_id = 9103
    await presence.presence_add(room_id=room_id, state=_state("p1", 1))
    state = await presence.presence_update(room_id=room_id, peer_id="p1", audio=False)
    assert state == {**_state("p1", 1), "audio": False}
    assert await presence.presence_get(room_id=room_id, peer_id="p1") == state


@pytest.fixture
def client():
    r = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield r
    r.close()


async def test_the_sync_api_reads_rooms_members_and_stale_peers(client):
    await presence.presence_add(room_id=31, state=_state("a", 7))
    await presence.presence_add(room_id=31, state=_state("b", 8))
    await presence.presence_add(room_id=5, state=_state("c", 9))
    # b's heartbeat stopped a minute ago.
    secs, micros = client.time()
    client.zadd("presence:31:seen", {"b": secs + micros / 1e6 - 60})

    assert presence.presence_room_ids_sync(client=client) == [5, 31]
    assert presence.presence_counts_sync(client=client) == {5: 1, 31: 2}
    assert presence.presence_member_ids_sync(client=client, room_id=31) == {7, 8}
    assert presence.presence_stale_sync(client=client, room_id=31, timeout_s=30) == ["b"]
    assert presence.presence_stale_sync(client=client, room_id=5, timeout_s=30) == []
    states = presence.presence_states_sync(client=client, room_id=5)
    assert states == [json.loads(json.dumps(_state("c", 9)))]
    assert presence.presence_member_ids_sync(client=client, room_id=404) == set()
