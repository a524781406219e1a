"""rooms/sweep.py: one loop-wide sweep re-checks every ready room socket."""

import asyncio

import pytest

from rooms import presence, sweep
from tests.fixtures.sockets import joined
from videochat.closecodes import CloseCode
from videochat.devstack import scaled
from videochat.redis import get_redis

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ready_sockets_are_watched_until_they_close(room, owner, member):
    assert sweep.watched() == 0
    async with joined(owner):
        async with joined(member.user):
            assert sweep.watched() == 2
        assert sweep.watched() == 1
    assert sweep.watched() == 0


async def test_the_sweep_closes_a_reaped_socket_and_keeps_the_others(room, owner, member, settings):
    settings.SOCKET_CHECK_INTERVAL_S = 0.3
    async with joined(owner) as (kept, _), joined(member.user) as (reaped, welcome):
        # Reaped by another process, its notice lost: only the re-check can tell.
        await get_redis().hdel(presence.channel_key(room.pk), welcome["peer_id"])
        deadline = asyncio.get_running_loop().time() + scaled(5)
        while True:
            frame = await reaped.receive_output(timeout=scaled(5))
            if frame["type"] == "websocket.close":
                break
            assert asyncio.get_running_loop().time() < deadline
        assert frame["code"] == CloseCode.GONE
        # Three more sweeps over the kept socket: still open and answering.
        await asyncio.sleep(1.0)
        await kept.send_json_to({"type": "ping", "t": 1})
        while (frame := await kept.receive_json_from(timeout=scaled(5)))["type"] != "pong":
            pass
        assert frame["present"] is True
