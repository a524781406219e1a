"""The real daphne in front of the room socket: its message size limit and Origin check."""

import asyncio
import json

import pytest
import websockets
from asgiref.sync import sync_to_async

from rooms.protocol import PROTOCOL_VERSION
from tests.fixtures.sockets import session_cookie_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def ws_url(live_url: str) -> str:
    return live_url.replace("http://", "ws://") + "/ws/rooms/standup/"


async def open_socket(live_url, cookie, origin):
    return await websockets.connect(
        ws_url(live_url),
        origin=origin,
        additional_headers={"Cookie": f"sessionid={cookie}"},
        max_size=2**20,
    )


async def test_daphne_closes_a_socket_sending_more_than_its_message_limit(live_url, member):
    cookie = await session_cookie_for(member.user)
    ws = await open_socket(live_url, cookie, live_url)
    try:
        await ws.send(json.dumps({"type": "hello", "v": PROTOCOL_VERSION}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["type"] == "welcome"
        # Under daphne's limit but over the type's: an error frame, socket kept.
        await ws.send(json.dumps({"type": "ping", "t": "x" * 1000}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["code"] == "too_large"
        # Over daphne's --websocket-max-message-size: the server drops the socket.
        await ws.send(json.dumps({"type": "signal.offer", "sdp": "x" * 100_000}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 10)
        # autobahn (under daphne) fails the connection: no close frame (1006), or 1009.
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1009, closed.value
    finally:
        await ws.close()
    # The server is unharmed: the same person connects again.
    again = await open_socket(live_url, cookie, live_url)
    try:
        await again.send(json.dumps({"type": "hello", "v": PROTOCOL_VERSION}))
        assert json.loads(await asyncio.wait_for(again.recv(), 10))["type"] == "welcome"
    finally:
        await again.close()


async def test_daphne_refuses_a_foreign_origin_at_the_handshake(live_url, member):
    cookie = await session_cookie_for(member.user)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await open_socket(live_url, cookie, "https://evil.example")
    assert refused.value.response.status_code == 403


async def test_a_banned_account_is_refused_by_the_real_server(live_url, member, room, owner):
    from moderation import services
    from rooms.models import Membership

    owner_member = await Membership.objects.aget(room=room, user=owner)
    await sync_to_async(services.ban_create)(
        room_id=room.pk, actor_member_id=owner_member.pk, target_member_id=member.pk
    )
    ws = await open_socket(live_url, await session_cookie_for(member.user), live_url)
    await ws.send(json.dumps({"type": "hello", "v": PROTOCOL_VERSION}))
    error = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert error["code"] == "banned"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 4003
