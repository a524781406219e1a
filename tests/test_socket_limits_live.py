"""Per-address limits on the real daphne: frames (valid or not) and new sockets."""

import asyncio
import json

import pytest
import websockets

from rooms.protocol import PROTOCOL_VERSION
from tests.fixtures import rawsocket
from tests.fixtures.live import daphne_service
from tests.fixtures.sockets import session_cookie_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

FRAME_BURST = 30
CONNECT_BURST = 3


@pytest.fixture(scope="module")
def tight_daphne(django_db_setup, django_db_blocker):
    service = daphne_service(
        FRAME_RATE_IP_PER_S="2",
        FRAME_RATE_IP_BURST=str(FRAME_BURST),
        CONNECT_RATE_IP_PER_S="0.5",
        CONNECT_RATE_IP_BURST=str(CONNECT_BURST),
    ).start()
    yield service
    service.stop()


@pytest.fixture
def base(tight_daphne, transactional_db):
    return f"http://127.0.0.1:{tight_daphne.port}"


async def test_invalid_frames_are_charged_to_the_address_and_a_flood_is_closed(base, member):
    ws = await rawsocket.connect(base, cookie=await session_cookie_for(member.user))
    await rawsocket.hello(ws)
    junk = [
        b"\x00\x01binary",
        "not json",
        "[1, 2]",
        json.dumps({"type": "nope.nothing"}),
        json.dumps({"type": "ping", "t": "x" * 400}),  # over ping's own limit
        json.dumps({"type": "signal.offer", "sdp": "x" * 60000}),  # over signal's
        "[" * 30000 + "]" * 30000,
    ]
    sent = 0
    try:
        for i in range(700):
            await ws.send(junk[i % len(junk)])
            sent += 1
    except websockets.ConnectionClosed:
        assert sent > FRAME_BURST  # closed as a flood while we were still sending
    code, frames = await rawsocket.close_code(ws, timeout=20)
    codes = [f.get("code") for f in frames if f.get("type") == "error"]
    # Only what fit the burst was parsed and answered; one rate_limited said
    # when to come back; the rest were dropped; the socket was closed as a flood.
    assert code == 4429, (code, len(frames))
    assert codes.count("rate_limited") == 2, codes  # the first refusal, then the close
    assert all(f["retry_after"] > 0 for f in frames if f.get("code") == "rate_limited")
    answered = len(codes) - codes.count("rate_limited")
    assert answered <= FRAME_BURST, f"{answered} of {sent} invalid frames were answered"


async def test_binary_and_oversize_frames_alone_exhaust_the_address_bucket(base, member):
    """No valid frame at all, not even hello: the address is still charged."""
    ws = await rawsocket.connect(base, cookie=await session_cookie_for(member.user))
    for _ in range(FRAME_BURST + 5):
        await ws.send(b"\xff" * 1000)
    errors = [await rawsocket.recv_until(ws, "error") for _ in range(FRAME_BURST + 1)]
    assert errors[-1]["code"] == "rate_limited", [e["code"] for e in errors]
    assert {e["code"] for e in errors[:-1]} == {"bad_json"}
    await ws.close()
    # Another socket from the same address shares the empty bucket.
    ws2 = await rawsocket.connect(base, cookie=await session_cookie_for(member.user))
    try:
        await ws2.send(json.dumps({"type": "hello", "v": PROTOCOL_VERSION}))
        assert (await rawsocket.recv_json(ws2))["code"] == "rate_limited"
    finally:
        await ws2.close()


async def test_a_connection_flood_gets_4429_with_retry_after_and_may_retry_after_it(base, member):
    cookie = await session_cookie_for(member.user)
    for _ in range(CONNECT_BURST):
        ws = await rawsocket.connect(base, cookie=cookie)
        await ws.close()
    refused = await rawsocket.connect(base, cookie=cookie)
    code, frames = await rawsocket.close_code(refused)
    assert code == 4429
    assert frames[0]["code"] == "rate_limited"
    retry_after = frames[0]["retry_after"]
    assert 0 < retry_after <= 1 / 0.5 + 0.1
    # Told when to come back, a client that waits that long gets in.
    # The contract under test is the wait itself (not a wait for some state).
    await asyncio.sleep(retry_after)
    ws = await rawsocket.connect(base, cookie=cookie)
    try:
        assert (await rawsocket.hello(ws))["type"] == "welcome"
    finally:
        await ws.close()
