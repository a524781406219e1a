"""Presence for the call: who is past the pre-join preview (in_call), and signals to
someone who has gone."""

import pytest

from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def test_in_call_is_part_of_presence_and_updates_reach_the_others(room, owner, member):
    async with joined(owner, in_call=True) as (alice, wa):
        assert wa["participants"][0]["in_call"] is True
        async with joined(member.user) as (bob, wb):
            joined_frame = await receive_until(alice, "presence.join")
            assert joined_frame["peer"]["in_call"] is False
            await bob.send_json_to({"type": "presence.update", "in_call": True, "audio": False})
            update = await receive_until(alice, "presence.update")
            assert update["peer"]["peer_id"] == wb["peer_id"]
            assert update["peer"]["in_call"] is True and update["peer"]["audio"] is False
            await bob.send_json_to({"type": "presence.update", "in_call": "yes"})
            assert (await receive_until(bob, "error"))["code"] == "bad_request"


async def test_a_signal_to_someone_who_left_is_unknown_peer(room, owner, member):
    async with joined(owner) as (alice, _):
        async with joined(member.user) as (bob, wb):
            await receive_until(alice, "presence.join")
            await bob.send_json_to({"type": "leave"})
            await receive_until(alice, "presence.leave")
        await alice.send_json_to({"type": "signal.answer", "to": wb["peer_id"], "sdp": "v=0"})
        error = await receive_until(alice, "error")
        assert error["code"] == "unknown_peer" and error["peer_id"] == wb["peer_id"]


async def test_welcome_carries_resume_token_and_ice_config(room, owner, settings):
    settings.STUN_URLS = ["stun:stun.example.com:3478"]
    settings.TURN_URLS = []
    settings.ICE_RELAY_ONLY = False
    async with joined(owner) as (_, welcome):
        assert welcome["resumed"] is False
        assert len(welcome["resume"]["token"]) == 64 and welcome["resume"]["grace_s"] > 0
        assert welcome["ice"] == {
            "ice_servers": [{"urls": ["stun:stun.example.com:3478"]}],
            "ice_transport_policy": "all",
            "expires_at": None,
        }
