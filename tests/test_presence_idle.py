"""A quiet socket must stay alive: nothing reaches it through the channel layer for
longer than channels_redis' 5 s BZPOPMIN wait (redis-py 8's default read timeout is
also 5 s, which killed idle consumers until settings raised it)."""

import asyncio

import pytest

from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_idle_socket_still_gets_room_events_after_seven_quiet_seconds(room, owner, member):
    async with joined(owner) as (alice, _):
        await asyncio.sleep(7)
        async with joined(member.user) as (_, wb):
            frame = await receive_until(alice, "presence.join")
            assert frame["peer"]["peer_id"] == wb["peer_id"]
