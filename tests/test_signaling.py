"""Offer/answer/ICE reach exactly one peer of the same room, through the real ASGI router."""

import pytest
from channels.testing import WebsocketCommunicator

from rooms import services
from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def nothing_arrives(comm: WebsocketCommunicator, *, within: float = 0.3) -> bool:
    return await comm.receive_nothing(timeout=within)


@pytest.fixture
def third(django_user_model, room, invite):
    from tests.conftest import make_user

    return services.membership_join(invite=invite, user=make_user(django_user_model, "tara"))


async def test_offer_answer_and_ice_go_to_the_target_only(room, owner, member, third):
    async with joined(owner) as (alice, wa), joined(member.user) as (bob, wb):
        async with joined(third.user) as (carol, wc):
            await receive_until(alice, "presence.join")  # bob
            await receive_until(alice, "presence.join")  # carol
            await receive_until(bob, "presence.join")  # carol
            await alice.send_json_to(
                {"type": "signal.offer", "to": wb["peer_id"], "sdp": "v=0 offer"}
            )
            offer = await bob.receive_json_from(timeout=5)
            assert offer == {"type": "signal.offer", "from": wa["peer_id"], "sdp": "v=0 offer"}
            await bob.send_json_to(
                {"type": "signal.answer", "to": wa["peer_id"], "sdp": "v=0 answer"}
            )
            answer = await alice.receive_json_from(timeout=5)
            assert answer["type"] == "signal.answer" and answer["from"] == wb["peer_id"]
            candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
            await alice.send_json_to(
                {"type": "signal.ice", "to": wb["peer_id"], "candidate": candidate}
            )
            ice = await bob.receive_json_from(timeout=5)
            assert ice["candidate"]["candidate"] == candidate["candidate"]
            assert ice["candidate"]["sdpMLineIndex"] is None
            await alice.send_json_to({"type": "signal.ice", "to": wb["peer_id"], "candidate": None})
            assert (await bob.receive_json_from(timeout=5))["candidate"] is None
            # Carol, in the same room, saw none of it; the sender got no echo.
            assert await nothing_arrives(carol)
            assert await nothing_arrives(alice)


async def test_offer_flags_pass_through_and_nothing_else_does(room, owner, member):
    """``restart`` and ``fresh`` reach the target when true; other keys never do."""
    async with joined(owner) as (alice, wa), joined(member.user) as (bob, wb):
        await receive_until(alice, "presence.join")
        sent = {"type": "signal.offer", "to": wb["peer_id"], "sdp": "v=0"}
        await alice.send_json_to({**sent, "restart": True, "fresh": True, "x": 1})
        offer = await bob.receive_json_from(timeout=5)
        assert offer == {
            "type": "signal.offer",
            "from": wa["peer_id"],
            "sdp": "v=0",
            "restart": True,
            "fresh": True,
        }
        await alice.send_json_to({**sent, "restart": "yes", "fresh": 1})
        offer = await bob.receive_json_from(timeout=5)
        assert offer == {"type": "signal.offer", "from": wa["peer_id"], "sdp": "v=0"}


async def test_signal_to_a_peer_of_another_room_is_unknown_peer(room, owner, member):
    from asgiref.sync import sync_to_async

    await sync_to_async(services.room_create)(
        owner=owner, name="Other", slug="other", capacity=6, guest_access=False
    )
    async with joined(owner, slug="other") as (elsewhere, we):
        async with joined(member.user) as (bob, wb):
            async with joined(owner) as (alice, _):
                await alice.send_json_to(
                    {"type": "signal.offer", "to": we["peer_id"], "sdp": "x", "ref": 7}
                )
                error = await receive_until(alice, "error")
                assert error["code"] == "unknown_peer" and error["ref"] == 7
                assert await nothing_arrives(elsewhere)
                # The socket stays usable and bob is undisturbed.
                await alice.send_json_to({"type": "ping", "t": 1})
                assert (await receive_until(alice, "pong"))["present"] is True


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "signal.offer", "sdp": "v=0"},
        {"type": "signal.offer", "to": 5, "sdp": "v=0"},
        {"type": "signal.offer", "to": "PEER", "sdp": ""},
        {"type": "signal.answer", "to": "PEER", "sdp": {"not": "a string"}},
        {"type": "signal.offer", "to": "PEER", "sdp": "x" * 50_000},
        {"type": "signal.ice", "to": "PEER", "candidate": "candidate:1"},
        {"type": "signal.ice", "to": "PEER", "candidate": {"sdpMid": "0"}},
        {"type": "signal.offer", "to": "SELF", "sdp": "v=0"},
    ],
)
async def test_malformed_signals_get_bad_request_and_disturb_nobody(room, owner, member, frame):
    async with joined(owner) as (alice, wa), joined(member.user) as (bob, wb):
        await receive_until(alice, "presence.join")
        target = {"PEER": wb["peer_id"], "SELF": wa["peer_id"]}
        if isinstance(frame.get("to"), str):
            frame = {**frame, "to": target[frame["to"]]}
        await alice.send_json_to(frame)
        error = await alice.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["code"] == "bad_request", error
        assert await nothing_arrives(bob)


async def test_turn_refresh_returns_fresh_credentials(room, owner, settings):
    settings.TURN_URLS = ["turn:127.0.0.1:3478?transport=udp"]
    settings.TURN_SECRET = "s3cret"
    settings.TURN_TTL = 600
    async with joined(owner) as (alice, welcome):
        turn_server = welcome["ice"]["ice_servers"][-1]
        assert turn_server["urls"] == settings.TURN_URLS
        await alice.send_json_to({"type": "turn.refresh"})
        fresh = await receive_until(alice, "turn.credentials")
        assert fresh["expires_at"] >= welcome["ice"]["expires_at"]
        assert fresh["ice_transport_policy"] == "all"
        username = fresh["ice_servers"][-1]["username"]
        assert username.split(":")[0] == str(fresh["expires_at"])
