"""Raise hand and reactions over the room socket (docs/protocol.md, "Raise hand and reactions")."""

from datetime import datetime

import pytest

from rooms.models import Membership, Role
from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

THUMBS_UP = "\U0001f44d"
HEART = "\u2764\ufe0f"


async def test_a_raised_hand_reaches_everyone_with_who_and_when(room, owner, member):
    async with joined(owner, in_call=True) as (alice, wa):
        async with joined(member.user, in_call=True) as (bob, wb):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "hand.raise"})
            seen_by_alice = await receive_until(alice, "hand.raised")
            seen_by_bob = await receive_until(bob, "hand.raised")
    assert seen_by_alice == seen_by_bob
    assert seen_by_alice["peer_id"] == wb["peer_id"]
    assert seen_by_alice["member_id"] == member.id
    assert seen_by_alice["name"] == wb["member"]["display_name"]
    at = datetime.fromisoformat(seen_by_alice["at"])
    assert at.utcoffset() is not None and at.utcoffset().total_seconds() == 0


async def test_raising_twice_keeps_the_first_time_and_is_not_broadcast_again(room, owner, member):
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user, in_call=True) as (bob, _):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "hand.raise"})
            first = await receive_until(bob, "hand.raised")
            await receive_until(alice, "hand.raised")
            await bob.send_json_to({"type": "hand.raise"})
            again = await receive_until(bob, "hand.raised")
            assert again["at"] == first["at"]
            # Alice hears nothing more about it: the next thing she gets is the ping's pong.
            await alice.send_json_to({"type": "ping", "t": 1})
            assert (await alice.receive_json_from())["type"] == "pong"


async def test_lowering_your_own_hand_tells_the_room_who_lowered_it(room, owner, member):
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user, in_call=True) as (bob, wb):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "hand.raise"})
            await receive_until(alice, "hand.raised")
            await bob.send_json_to({"type": "hand.lower"})
            lowered = await receive_until(alice, "hand.lowered")
            assert lowered == {
                "type": "hand.lowered",
                "peer_id": wb["peer_id"],
                "by_member_id": member.id,
            }
            # Down already: nothing to say, no error.
            await bob.send_json_to({"type": "hand.lower"})
            await alice.send_json_to({"type": "ping", "t": 1})
            assert (await alice.receive_json_from())["type"] == "pong"


async def test_the_owner_lowers_someone_elses_hand(room, owner, member):
    async with joined(owner, in_call=True) as (alice, wa):
        async with joined(member.user, in_call=True) as (bob, wb):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "hand.raise"})
            await receive_until(alice, "hand.raised")
            await alice.send_json_to({"type": "hand.lower", "peer_id": wb["peer_id"]})
            lowered = await receive_until(bob, "hand.lowered")
    assert lowered["peer_id"] == wb["peer_id"]
    assert lowered["by_member_id"] == wa["member"]["id"]


async def test_a_moderator_lowers_someone_elses_hand(room, owner, member):
    await Membership.objects.filter(pk=member.pk).aupdate(role=Role.MODERATOR)
    async with joined(owner, in_call=True) as (alice, wa):
        async with joined(member.user, in_call=True) as (bob, _):
            await receive_until(alice, "presence.join")
            await alice.send_json_to({"type": "hand.raise"})
            await receive_until(bob, "hand.raised")
            await bob.send_json_to({"type": "hand.lower", "peer_id": wa["peer_id"]})
            lowered = await receive_until(alice, "hand.lowered")
    assert lowered == {"type": "hand.lowered", "peer_id": wa["peer_id"], "by_member_id": member.id}


async def test_a_participant_may_not_lower_someone_elses_hand(room, owner, member):
    async with joined(owner, in_call=True) as (alice, wa):
        async with joined(member.user, in_call=True) as (bob, _):
            await receive_until(alice, "presence.join")
            await alice.send_json_to({"type": "hand.raise"})
            await receive_until(bob, "hand.raised")
            await bob.send_json_to({"type": "hand.lower", "peer_id": wa["peer_id"], "ref": 7})
            error = await receive_until(bob, "error")
            assert error["code"] == "forbidden" and error["ref"] == 7
            # Still up: a late joiner sees it.
            async with joined(member.user) as (_, late):
                hands = {p["peer_id"]: p["hand_at"] for p in late["participants"]}
            assert hands[wa["peer_id"]] is not None


async def test_lowering_a_peer_who_is_not_here_is_not_found(room, owner):
    async with joined(owner, in_call=True) as (alice, _):
        await alice.send_json_to({"type": "hand.lower", "peer_id": "nobody"})
        error = await receive_until(alice, "error")
        assert error["code"] == "not_found" and error["peer_id"] == "nobody"
        await alice.send_json_to({"type": "hand.lower", "peer_id": 5})
        assert (await receive_until(alice, "error"))["code"] == "bad_request"


async def test_a_late_joiner_sees_the_hand_queue_in_its_welcome(room, owner, member):
    async with joined(owner, in_call=True) as (alice, wa):
        await alice.send_json_to({"type": "hand.raise"})
        raised = await receive_until(alice, "hand.raised")
        async with joined(member.user) as (bob, wb):
            peers = {p["peer_id"]: p for p in wb["participants"]}
            assert peers[wa["peer_id"]]["hand_at"] == raised["at"]
            assert peers[wb["peer_id"]]["hand_at"] is None
            # and presence.join carries it too, for those already in the room
            await bob.send_json_to({"type": "presence.update", "in_call": True})
            update = await receive_until(alice, "presence.update")
            assert update["peer"]["hand_at"] is None


async def test_leaving_the_call_lowers_the_hand(room, owner, member):
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user, in_call=True) as (bob, wb):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "hand.raise"})
            await receive_until(alice, "hand.raised")
            await bob.send_json_to({"type": "presence.update", "in_call": False})
            lowered = await receive_until(alice, "hand.lowered")
            assert lowered == {
                "type": "hand.lowered",
                "peer_id": wb["peer_id"],
                "by_member_id": member.id,
            }
            update = await receive_until(alice, "presence.update")
            assert update["peer"]["in_call"] is False and update["peer"]["hand_at"] is None
            # Back in the call, the hand is still down.
            await bob.send_json_to({"type": "presence.update", "in_call": True})
            update = await receive_until(alice, "presence.update")
            assert update["peer"]["in_call"] is True and update["peer"]["hand_at"] is None


async def test_leaving_the_room_takes_the_hand_with_it(room, owner, member):
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user, in_call=True) as (bob, wb):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "hand.raise"})
            await receive_until(alice, "hand.raised")
            await bob.send_json_to({"type": "leave"})
            left = await receive_until(alice, "presence.leave")
            assert left["peer_id"] == wb["peer_id"]
        async with joined(member.user) as (_, late):
            assert [p["hand_at"] for p in late["participants"]] == [None, None]


async def test_entering_the_call_from_another_tab_lowers_the_first_tabs_hand(room, owner, member):
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user, in_call=True) as (first, w1):
            await first.send_json_to({"type": "hand.raise"})
            await receive_until(alice, "hand.raised")
            async with joined(member.user, in_call=True):
                lowered = await receive_until(alice, "hand.lowered")
                assert lowered["peer_id"] == w1["peer_id"]


async def test_a_reaction_reaches_everyone_including_the_sender(room, owner, member):
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user, in_call=True) as (bob, wb):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "reaction.send", "emoji": HEART})
            seen = await receive_until(alice, "reaction")
            assert await receive_until(bob, "reaction") == seen
    assert seen == {
        "type": "reaction",
        "peer_id": wb["peer_id"],
        "member_id": member.id,
        "name": wb["member"]["display_name"],
        "emoji": HEART,
    }


@pytest.mark.parametrize("emoji", ["\U0001f4a9", "\u2764", "", None, 1, [THUMBS_UP]])
async def test_a_reaction_outside_the_six_is_a_bad_request(room, owner, emoji):
    async with joined(owner, in_call=True) as (alice, _):
        await alice.send_json_to({"type": "reaction.send", "emoji": emoji, "ref": "r1"})
        error = await receive_until(alice, "error")
        assert error["code"] == "bad_request" and error["field"] == "emoji"
        assert error["ref"] == "r1"


async def test_reactions_burst_five_then_are_rate_limited(room, owner):
    async with joined(owner, in_call=True) as (alice, _):
        for _ in range(5):
            await alice.send_json_to({"type": "reaction.send", "emoji": THUMBS_UP})
            assert (await alice.receive_json_from())["type"] == "reaction"
        await alice.send_json_to({"type": "reaction.send", "emoji": THUMBS_UP})
        error = await receive_until(alice, "error")
        assert error["code"] == "rate_limited"
        assert 0 < error["retry_after"] <= 2


async def test_gestures_need_a_peer_in_the_call(room, owner, member):
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user) as (bob, _):
            for frame in (
                {"type": "hand.raise"},
                {"type": "hand.lower"},
                {"type": "reaction.send", "emoji": THUMBS_UP},
            ):
                await bob.send_json_to(frame)
                error = await receive_until(bob, "error")
                assert error["code"] == "not_in_call", frame
            # The socket stays: chat and entering the call still work.
            await bob.send_json_to({"type": "presence.update", "in_call": True})
            await bob.send_json_to({"type": "hand.raise"})
            assert (await receive_until(alice, "hand.raised"))["member_id"] == member.id
