"""The room socket's connect checks, handshake, errors and presence."""

import json

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.protocol import PROTOCOL_VERSION
from tests.conftest import make_user
from tests.fixtures.sockets import communicator, joined, receive_until, session_cookie_for
from videochat.closecodes import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)


async def refused_after_accept(comm) -> int:
    """The close code of a socket accepted only to be told why it is refused."""
    connected, _ = await comm.connect()
    assert connected, "a close before accept is an HTTP 403 under daphne: no code"
    closed = await comm.receive_output(timeout=5)
    assert closed["type"] == "websocket.close", closed
    await comm.disconnect()
    return closed["code"]


async def test_anonymous_is_refused_with_unauthenticated(room):
    comm = await communicator(slug=room.slug)
    assert await refused_after_accept(comm) == CloseCode.UNAUTHENTICATED


async def test_non_member_is_refused_with_forbidden(room, outsider):
    comm = await communicator(slug=room.slug, cookie=await session_cookie_for(outsider))
    assert await refused_after_accept(comm) == CloseCode.FORBIDDEN


async def test_missing_room_is_refused(owner):
    comm = await communicator(slug="nowhere", cookie=await session_cookie_for(owner))
    assert await refused_after_accept(comm) == CloseCode.NO_SUCH_ROOM


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_foreign_or_missing_origin_is_refused(room, owner, origin):
    comm = await communicator(slug=room.slug, cookie=await session_cookie_for(owner), origin=origin)
    connected, _ = await comm.connect()
    assert not connected


async def test_frames_before_hello_get_not_ready(room, owner):
    comm = await communicator(slug=room.slug, cookie=await session_cookie_for(owner))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from())["code"] == "not_ready"
    await comm.disconnect()


async def test_wrong_protocol_version_closes_with_bad_handshake(room, owner):
    comm = await communicator(slug=room.slug, cookie=await session_cookie_for(owner))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "hello", "v": 999})
    error = await comm.receive_json_from()
    assert error["code"] == "bad_request" and error["supported"] == [PROTOCOL_VERSION]
    assert (await comm.receive_output())["code"] == CloseCode.BAD_HANDSHAKE
    await comm.disconnect()


async def test_welcome_lists_participants(room, owner):
    async with joined(owner) as (_, welcome):
        assert welcome["member"]["display_name"] == "olivia"
        assert [p["peer_id"] for p in welcome["participants"]] == [welcome["peer_id"]]


@pytest.mark.parametrize(
    "raw, code",
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"no": "type"}', "bad_request"),
        ('{"type": 5}', "bad_request"),
        ('{"type": "nope.never", "ref": "r1"}', "unknown_type"),
        ('{"type": "presence.update", "audio": "yes"}', "bad_request"),
        (json.dumps({"type": "ping", "pad": "x" * 70000}), "too_large"),
    ],
)
async def test_bad_frames_get_error_codes_and_socket_stays_open(room, owner, raw, code):
    async with joined(owner) as (comm, _):
        await comm.send_to(text_data=raw)
        error = await comm.receive_json_from()
        assert error["type"] == "error" and error["code"] == code
        if "ref" in raw:
            assert error["ref"] == "r1"
        await comm.send_json_to({"type": "ping", "t": 1})
        assert (await comm.receive_json_from())["type"] == "pong"


async def test_presence_join_update_leave_seen_by_the_other(room, owner, member):
    async with joined(owner) as (alice, welcome_a):
        async with joined(member.user) as (bob, welcome_b):
            joined_frame = await receive_until(alice, "presence.join")
            assert joined_frame["peer"]["display_name"] == "marco"
            assert {p["display_name"] for p in welcome_b["participants"]} == {"olivia", "marco"}
            await bob.send_json_to({"type": "presence.update", "audio": False})
            update = await receive_until(alice, "presence.update")
            assert update["peer"]["peer_id"] == welcome_b["peer_id"]
            assert update["peer"]["audio"] is False
        leave = await receive_until(alice, "presence.leave")
        assert leave["peer_id"] == welcome_b["peer_id"]


async def test_capacity_refuses_a_call_seat_not_the_socket(room, member, invite, django_user_model):
    """Capacity counts people in the call (tests/test_seats.py has the rest)."""
    room.capacity = 2
    await room.asave()
    ann, ben = [await sync_to_async(make_user)(django_user_model, n) for n in ("ann", "ben")]
    for user in (ann, ben):
        await sync_to_async(services.membership_join)(invite=invite, user=user)
    async with joined(member.user, in_call=True), joined(ann, in_call=True):
        comm = await communicator(slug=room.slug, cookie=await session_cookie_for(ben))
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
        assert (await comm.receive_json_from())["type"] == "welcome"
        await comm.send_json_to({"type": "presence.update", "in_call": True, "ref": 7})
        error = await receive_until(comm, "error")
        assert (error["code"], error["capacity"], error["ref"]) == ("room_full", 2, 7)
        await comm.disconnect()


async def test_a_full_room_of_stale_peers_frees_their_seats_for_a_newcomer(
    room, member, invite, django_user_model
):
    """Peers whose server died never said goodbye; with nobody left to ping, a join reaps them."""
    from rooms import presence
    from videochat.redis import get_redis

    room.capacity = 2
    await room.asave()
    ann, ben = [await sync_to_async(make_user)(django_user_model, n) for n in ("ann", "ben")]
    for user in (ann, ben):
        await sync_to_async(services.membership_join)(invite=invite, user=user)
    async with (
        joined(ann, in_call=True) as (alice, _),
        joined(member.user, in_call=True) as (
            bob,
            welcome_b,
        ),
    ):
        await receive_until(alice, "presence.join")
        # Bob's server "dies": his heartbeat stops and his socket never closes.
        stale = (await get_redis().time())[0] - presence.PRESENCE_TIMEOUT_S - 1
        _, seen = presence._keys(room.pk)
        await get_redis().zadd(seen, {welcome_b["peer_id"]: stale})
        async with joined(ben, in_call=True) as (_, welcome):
            me = next(p for p in welcome["participants"] if p["peer_id"] == welcome["peer_id"])
            assert me["in_call"] is True  # Bob's call seat was freed for Ben
            assert welcome_b["peer_id"] not in {p["peer_id"] for p in welcome["participants"]}
            leave = await receive_until(alice, "presence.leave")
            assert (leave["peer_id"], leave["reason"]) == (welcome_b["peer_id"], "timeout")


async def test_frame_flood_is_rate_limited_with_retry_after(room, owner, monkeypatch):
    from rooms import security
    from videochat import ratelimit

    # A small per-user bucket, so a loaded machine cannot refill it mid-test.
    monkeypatch.setattr(security, "USER_FRAME_LIMIT", ratelimit.Limit("t-user", 0.5, 10))
    async with joined(owner) as (comm, _):
        codes = []
        for i in range(40):
            await comm.send_json_to({"type": "ping", "t": i})
        while "rate_limited" not in codes:
            frame = await comm.receive_json_from(timeout=10)
            codes.append(frame.get("code", frame["type"]))
        while not await comm.receive_nothing(timeout=0.5):
            frame = await comm.receive_json_from()
            codes.append(frame.get("code", frame["type"]))
        # The burst went through first; the first refusal says when to come
        # back (2 s here); the frames sent before then are dropped unanswered.
        assert codes == ["pong"] * 10 + ["rate_limited"]
