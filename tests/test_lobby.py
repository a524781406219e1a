"""The lobby: newcomers knock, moderators admit or reject, across real sockets."""

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import AuditLog, Membership, Room
from rooms.protocol import PROTOCOL_VERSION
from tests.conftest import make_user
from tests.fixtures.sockets import communicator, joined, receive_until, session_cookie_for
from tests.test_moderation import closed_with

pytestmark = pytest.mark.django_db(transaction=True)


def audit_actions(room) -> list[str]:
    return list(AuditLog.objects.filter(room=room).order_by("id").values_list("action", flat=True))


async def knock(user):
    """A socket that said hello to a lobby room; returns (comm, lobby.waiting frame)."""
    comm = await communicator(slug="standup", cookie=await session_cookie_for(user))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
    return comm, await receive_until(comm, "lobby.waiting")


async def test_lobby_knock_admit_and_reject_across_two_consumers(
    owner, member, room, django_user_model
):
    async with joined(owner) as (mod, _):
        await mod.send_json_to({"type": "mod.lobby", "enabled": True})
        assert (await receive_until(mod, "room.access"))["lobby_enabled"] is True

        knocker = await communicator(slug="standup", cookie=await session_cookie_for(member.user))
        assert (await knocker.connect())[0]
        await knocker.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
        waiting = await receive_until(knocker, "lobby.waiting")
        knock = await receive_until(mod, "lobby.knock")
        assert knock["knock_id"] == waiting["knock_id"]
        assert knock["member_id"] == member.pk and "channel" not in knock
        # Not in the call while waiting: other frames are refused.
        await knocker.send_json_to({"type": "ping", "t": 1})
        assert (await receive_until(knocker, "error"))["code"] == "not_ready"

        await mod.send_json_to({"type": "mod.admit", "knock_id": knock["knock_id"]})
        welcome = await receive_until(knocker, "welcome")
        assert welcome["member"]["id"] == member.pk
        assert (await receive_until(mod, "lobby.resolved"))["decision"] == "admitted"
        assert (await receive_until(mod, "presence.join"))["peer"]["member_id"] == member.pk
        await knocker.disconnect()

        # A second newcomer is rejected.
        other = await sync_to_async(make_user)(django_user_model, "rita")
        await sync_to_async(services.membership_join)(
            invite=await room.invites.afirst(), user=other
        )
        knocker = await communicator(slug="standup", cookie=await session_cookie_for(other))
        assert (await knocker.connect())[0]
        await knocker.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
        await receive_until(knocker, "lobby.waiting")
        knock = await receive_until(mod, "lobby.knock")
        await mod.send_json_to({"type": "mod.reject", "knock_id": knock["knock_id"]})
        error, code = await closed_with(knocker, "error")
        assert (error["code"], code) == ("lobby_rejected", 4403)
        await knocker.disconnect()
        # Deciding twice is a conflict, not a crash.
        await mod.send_json_to({"type": "mod.admit", "knock_id": knock["knock_id"]})
        assert (await receive_until(mod, "error"))["code"] == "not_found"
    assert await sync_to_async(audit_actions)(room) == ["lobby_on", "lobby_admit", "lobby_reject"]


async def test_a_moderator_joining_later_sees_who_is_waiting(owner, member, room):
    await Room.objects.filter(pk=room.pk).aupdate(lobby_enabled=True)
    knocker = await communicator(slug="standup", cookie=await session_cookie_for(member.user))
    assert (await knocker.connect())[0]
    await knocker.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
    waiting = await receive_until(knocker, "lobby.waiting")
    async with joined(owner) as (mod, _):
        await mod.send_json_to({"type": "mod.lobby_list"})
        (knock,) = (await receive_until(mod, "lobby.list"))["knocks"]
        assert knock["knock_id"] == waiting["knock_id"]
        # The knocker gives up: the moderators' list drops it.
        await knocker.disconnect()
        resolved = await receive_until(mod, "lobby.resolved")
        assert resolved == {
            "type": "lobby.resolved",
            "knock_id": knock["knock_id"],
            "decision": "left",
        }


async def test_turning_the_lobby_off_admits_everyone_waiting(
    owner, member, room, django_user_model
):
    other = await sync_to_async(make_user)(django_user_model, "rita")
    invite = await room.invites.afirst()
    await sync_to_async(services.membership_join)(invite=invite, user=other)
    await Room.objects.filter(pk=room.pk).aupdate(lobby_enabled=True)
    async with joined(owner) as (mod, _):
        first, _ = await knock(member.user)
        second, _ = await knock(other)
        await mod.send_json_to({"type": "mod.lobby", "enabled": False})
        for comm in (first, second):
            assert (await receive_until(comm, "welcome"))["type"] == "welcome"
            await comm.disconnect()
    assert await sync_to_async(audit_actions)(room) == ["lobby_off", "lobby_admit", "lobby_admit"]


async def test_a_second_hello_while_waiting_makes_no_second_knock(owner, member, room):
    await Room.objects.filter(pk=room.pk).aupdate(lobby_enabled=True)
    async with joined(owner) as (mod, _):
        comm, _ = await knock(member.user)
        await receive_until(mod, "lobby.knock")
        await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
        assert (await receive_until(comm, "error"))["code"] == "bad_request"
        await mod.send_json_to({"type": "mod.lobby_list"})
        assert len((await receive_until(mod, "lobby.list"))["knocks"]) == 1
        await comm.disconnect()


async def test_a_member_banned_while_waiting_is_closed_and_the_knock_goes(owner, member, room):
    await Room.objects.filter(pk=room.pk).aupdate(lobby_enabled=True)
    async with joined(owner) as (mod, _):
        comm, waiting = await knock(member.user)
        await receive_until(mod, "lobby.knock")
        await mod.send_json_to({"type": "mod.ban", "member_id": member.pk, "reason": "troll"})
        _, code = await closed_with(comm, "mod.banned")
        assert code == 4003
        await comm.disconnect()
        resolved = await receive_until(mod, "lobby.resolved")
        assert resolved["knock_id"] == waiting["knock_id"] and resolved["decision"] == "left"


async def test_participants_never_see_knocks_and_cannot_decide(
    owner, member, room, django_user_model
):
    other = await sync_to_async(make_user)(django_user_model, "rita")
    invite = await room.invites.afirst()
    await sync_to_async(services.membership_join)(invite=invite, user=other)
    async with joined(owner) as (mod, _), joined(member.user) as (peer, _):
        await mod.send_json_to({"type": "mod.lobby", "enabled": True})
        await receive_until(peer, "room.access")
        comm, waiting = await knock(other)
        await receive_until(mod, "lobby.knock")
        await peer.send_json_to({"type": "mod.admit", "knock_id": waiting["knock_id"]})
        error = await receive_until(peer, "error")
        assert error["code"] == "forbidden"
        await peer.send_json_to({"type": "mod.lobby_list"})
        assert (await receive_until(peer, "error"))["code"] == "forbidden"
        await comm.disconnect()
    owner_member = await Membership.objects.aget(room=room, user=owner)
    assert owner_member.role == "owner"
