"""Session resume: within the grace period the peer keeps its id and the others see
nothing; after it, the peer is reaped (others see a leave) and a resume joins afresh."""

import pytest

from rooms import presence
from rooms.protocol import PROTOCOL_VERSION
from tests.fixtures.sockets import communicator, joined, receive_until, session_cookie_for
from videochat.closecodes import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)

ABNORMAL = 1006  # what the server sees when the network drops


async def open_with_hello(user, **hello):
    comm = await communicator(slug="standup", cookie=await session_cookie_for(user))
    connected, code = await comm.connect()
    assert connected, code
    await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION, **hello})
    welcome = await comm.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome", welcome
    return comm, welcome


def claim(welcome):
    return {"peer_id": welcome["peer_id"], "token": welcome["resume"]["token"]}


async def test_resume_within_grace_keeps_peer_id_and_others_see_nothing(room, owner, member):
    async with joined(owner) as (alice, _):
        bob, wb = await open_with_hello(member.user)
        await receive_until(alice, "presence.join")
        await bob.disconnect(code=ABNORMAL)
        bob2, wb2 = await open_with_hello(member.user, resume=claim(wb))
        try:
            assert wb2["resumed"] is True and wb2["peer_id"] == wb["peer_id"]
            assert {p["peer_id"] for p in wb2["participants"]} == {
                p["peer_id"] for p in wb["participants"]
            }
            assert await alice.receive_nothing(timeout=0.5), "others saw a leave/join"
            # The resumed socket is reachable for signaling under the old id.
            await alice.send_json_to({"type": "signal.offer", "to": wb["peer_id"], "sdp": "v=0"})
            assert (await receive_until(bob2, "signal.offer"))["sdp"] == "v=0"
        finally:
            await bob2.disconnect()
        leave = await receive_until(alice, "presence.leave")
        assert leave["peer_id"] == wb["peer_id"]


async def test_signals_sent_during_the_gap_are_delivered_on_resume(room, owner, member):
    async with joined(owner) as (alice, _):
        bob, wb = await open_with_hello(member.user)
        await receive_until(alice, "presence.join")
        await bob.disconnect(code=ABNORMAL)
        await alice.send_json_to({"type": "signal.offer", "to": wb["peer_id"], "sdp": "gap"})
        await alice.send_json_to({"type": "signal.ice", "to": wb["peer_id"], "candidate": None})
        assert await alice.receive_nothing(timeout=0.3), "a peer in grace is not unknown"
        bob2, _ = await open_with_hello(member.user, resume=claim(wb))
        try:
            held = [await bob2.receive_json_from(timeout=5) for _ in range(2)]
            assert [f["type"] for f in held] == ["signal.offer", "signal.ice"]
            assert held[0]["sdp"] == "gap"
        finally:
            await bob2.disconnect()


async def test_after_grace_the_peer_is_reaped_and_resume_joins_afresh(
    room, owner, member, settings
):
    settings.CALL_RESUME_GRACE_S = 1.0
    async with joined(owner) as (alice, _):
        bob, wb = await open_with_hello(member.user)
        await receive_until(alice, "presence.join")
        await bob.disconnect(code=ABNORMAL)
        # The reaper runs by itself; nobody has to ping.
        leave = await receive_until(alice, "presence.leave", timeout=5)
        assert leave == {"type": "presence.leave", "peer_id": wb["peer_id"], "reason": "timeout"}
        bob2, wb2 = await open_with_hello(member.user, resume=claim(wb))
        try:
            assert wb2["resumed"] is False and wb2["peer_id"] != wb["peer_id"]
            joined_frame = await receive_until(alice, "presence.join")
            assert joined_frame["peer"]["peer_id"] == wb2["peer_id"]
        finally:
            await bob2.disconnect()


async def test_a_forged_or_foreign_resume_token_gets_a_new_peer(room, owner, member):
    async with joined(owner) as (alice, wa):
        bob, wb = await open_with_hello(member.user)
        try:
            await receive_until(alice, "presence.join")
            # Bob cannot take over alice's peer, even with a well-formed claim.
            forged = {"peer_id": wa["peer_id"], "token": wb["resume"]["token"]}
            bob2, wb2 = await open_with_hello(member.user, resume=forged)
            assert wb2["resumed"] is False and wb2["peer_id"] not in (wa["peer_id"], wb["peer_id"])
            await bob2.disconnect()
        finally:
            await bob.disconnect()


async def test_resume_while_the_old_socket_looks_alive_replaces_it(room, owner, member):
    async with joined(owner) as (alice, _):
        old, wb = await open_with_hello(member.user)
        await receive_until(alice, "presence.join")
        new, wb2 = await open_with_hello(member.user, resume=claim(wb))
        try:
            assert wb2["resumed"] is True
            closed = await old.receive_output(timeout=5)
            assert closed == {"type": "websocket.close", "code": CloseCode.REPLACED}
            await old.disconnect(code=CloseCode.REPLACED)
            # The retired socket's goodbye must not remove the resumed peer.
            assert await alice.receive_nothing(timeout=0.5)
            roster = await presence.presence_list(room_id=room.id)
            assert [p["peer_id"] for p in roster if p["display_name"] == "marco"] == [wb["peer_id"]]
        finally:
            await new.disconnect()


async def test_deliberate_leave_frame_removes_at_once(room, owner, member):
    async with joined(owner) as (alice, _):
        bob, wb = await open_with_hello(member.user)
        await receive_until(alice, "presence.join")
        await bob.send_json_to({"type": "leave"})
        leave = await receive_until(alice, "presence.leave", timeout=2)
        assert leave["peer_id"] == wb["peer_id"] and leave["reason"] == "left"
        assert (await bob.receive_output(timeout=2))["code"] == 1000
        await bob.disconnect()


async def test_a_dead_socket_without_close_is_reaped_by_heartbeat(room, owner, member, settings):
    """No close ever arrives (stalled network): the heartbeat timeout removes it."""
    async with joined(owner) as (alice, _):
        async with joined(member.user) as (bob, wb):
            await receive_until(alice, "presence.join")
            # Pretend bob's last heartbeat was long ago.
            from videochat.redis import get_redis

            await get_redis().zadd(f"presence:{room.id}:seen", {wb["peer_id"]: 1})
            await alice.send_json_to({"type": "ping", "t": 1})
            leave = await receive_until(alice, "presence.leave")
            assert leave["peer_id"] == wb["peer_id"] and leave["reason"] == "timeout"
            await bob.send_json_to({"type": "ping", "t": 2})
            assert (await receive_until(bob, "pong"))["present"] is False
