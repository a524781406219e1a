"""Resume on the real daphne: the newest socket of a session keeps it."""

import json

import pytest

from rooms import presence
from tests.fixtures import rawsocket
from tests.fixtures.sockets import session_cookie_for
from videochat.closecodes import CloseCode

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def claim(welcome):
    return {"peer_id": welcome["peer_id"], "token": welcome["resume"]["token"]}


async def test_a_late_resume_from_an_older_socket_never_closes_the_live_one(live_url, room, member):
    cookie = await session_cookie_for(member.user)
    first = await rawsocket.connect(live_url, cookie=cookie)
    welcome = await rawsocket.hello(first)
    # A reconnect whose hello is held up on the way (a stalled path) ...
    late = await rawsocket.connect(live_url, cookie=cookie)
    # ... while the client gives up on it and resumes on a newer socket.
    live = await rawsocket.connect(live_url, cookie=cookie)
    try:
        resumed = await rawsocket.hello(live, resume=claim(welcome))
        assert resumed["resumed"] is True and resumed["peer_id"] == welcome["peer_id"]
        assert (await rawsocket.close_code(first))[0] == CloseCode.REPLACED
        # Now the held-up hello arrives.
        await late.send(json.dumps({"type": "hello", "v": 1, "resume": claim(welcome)}))
        code, frames = await rawsocket.close_code(late)
        assert code == CloseCode.REPLACED
        assert [f["code"] for f in frames] == ["superseded"]
        # The live socket was not touched and still serves the peer.
        await live.send(json.dumps({"type": "ping", "t": "still"}))
        pong = await rawsocket.recv_until(live, "pong")
        assert (pong["t"], pong["present"]) == ("still", True)
        channel = await presence.presence_channel(room_id=room.id, peer_id=welcome["peer_id"])
        assert channel is not None
        # A resume from a socket newer than the live one still takes over.
        newest = await rawsocket.connect(live_url, cookie=cookie)
        try:
            assert (await rawsocket.hello(newest, resume=claim(welcome)))["resumed"] is True
            assert (await rawsocket.close_code(live))[0] == CloseCode.REPLACED
        finally:
            await newest.close()
    finally:
        for ws in (first, late, live):
            await ws.close()
