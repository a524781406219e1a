"""Moderation in the call, driven through the real ASGI router, real Redis and channel layer.

Each action is checked for its live effect on the others (two or more sockets)
and for its audit row.
"""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from moderation import services as moderation
from rooms import keys, presence, services
from rooms.models import AuditLog, Ban, Membership, Role, Room
from rooms.protocol import PROTOCOL_VERSION
from tests.conftest import make_user
from tests.fixtures.sockets import communicator, joined, receive_until, session_cookie_for

pytestmark = pytest.mark.django_db(transaction=True)


async def hello_refused(user, *, cookie=None, **hello):
    """Connect and say hello; return (error frame, close code) of the refusal."""
    comm = await communicator(slug="standup", cookie=cookie or await session_cookie_for(user))
    connected, code = await comm.connect()
    assert connected, code
    await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION, **hello})
    error = await comm.receive_json_from(timeout=5)
    closed = await comm.receive_output(timeout=5)
    await comm.disconnect()
    assert closed["type"] == "websocket.close", closed
    return error, closed["code"]


async def closed_with(comm, frame_type: str):
    """The frame the server sent before closing this socket, and the close code."""
    frame = await receive_until(comm, frame_type)
    while True:
        out = await comm.receive_output(timeout=5)
        if out["type"] == "websocket.close":
            return frame, out["code"]


def audit_actions(room) -> list[str]:
    return list(AuditLog.objects.filter(room=room).order_by("id").values_list("action", flat=True))


@pytest.fixture
def guest(room):
    return Membership.objects.create(room=room, display_name="Gina", role=Role.GUEST)


def guest_cookie(room, guest) -> str:
    client = Client()
    session = client.session
    session["guest_memberships"] = {str(room.pk): guest.pk}
    session.save()
    return session.session_key


# --- kick -----------------------------------------------------------------------------


async def test_kick_closes_the_target_with_4001_and_the_room_sees_it(owner, member, room):
    async with joined(owner) as (mod, _), joined(member.user) as (target, welcome):
        await receive_until(mod, "presence.join")
        await mod.send_json_to(
            {"type": "mod.kick", "member_id": member.pk, "reason": "off topic", "ref": 1}
        )
        kicked, code = await closed_with(target, "mod.kicked")
        assert code == 4001
        assert kicked == {"type": "mod.kicked", "reason": "off topic", "by": "olivia"}
        leave = await receive_until(mod, "presence.leave")
        assert leave["peer_id"] == welcome["peer_id"] and leave["reason"] == "kicked"
        action = await receive_until(mod, "mod.action")
        assert action["action"] == "kick" and action["target"]["member_id"] == member.pk
    assert await sync_to_async(audit_actions)(room) == ["kick"]
    # The kicked member stays out for a while, even by reloading the page.
    error, code = await hello_refused(member.user)
    assert (error["code"], code) == ("kicked", 4001)


async def test_participant_cannot_kick_and_nothing_is_recorded(owner, member, room):
    async with joined(owner) as (mod, _), joined(member.user) as (comm, _):
        owner_member = await Membership.objects.aget(room=room, user=owner)
        await comm.send_json_to({"type": "mod.kick", "member_id": owner_member.pk, "ref": "k"})
        error = await receive_until(comm, "error")
        assert error["code"] == "forbidden" and error["ref"] == "k"
        # Still connected, both of them.
        await comm.send_json_to({"type": "ping", "t": 1})
        assert (await receive_until(comm, "pong"))["present"] is True
    assert await sync_to_async(audit_actions)(room) == []


async def test_moderator_cannot_kick_the_owner_or_another_moderator(
    owner, member, room, django_user_model
):
    other = await sync_to_async(make_user)(django_user_model, "mia")
    invite = await room.invites.afirst()
    other_member = await sync_to_async(services.membership_join)(invite=invite, user=other)
    await Membership.objects.filter(pk__in=[member.pk, other_member.pk]).aupdate(
        role=Role.MODERATOR
    )
    owner_member = await Membership.objects.aget(room=room, user=owner)
    async with joined(member.user) as (comm, _):
        for target in (owner_member.pk, other_member.pk, member.pk):
            await comm.send_json_to({"type": "mod.kick", "member_id": target})
            assert (await receive_until(comm, "error"))["code"] == "forbidden"


# --- ban --------------------------------------------------------------------------------


async def test_ban_closes_with_4003_and_holds_on_reconnect_resume_and_invite(
    owner, member, room, invite
):
    cookie = await session_cookie_for(member.user)
    async with joined(owner) as (mod, _), joined(member.user, cookie=cookie) as (target, welcome):
        await receive_until(mod, "presence.join")
        await mod.send_json_to(
            {"type": "mod.ban", "member_id": member.pk, "reason": "spam", "minutes": 60}
        )
        banned, code = await closed_with(target, "mod.banned")
        assert code == 4003
        assert banned["reason"] == "spam" and banned["by"] == "olivia" and banned["until"]
        assert (await receive_until(mod, "presence.leave"))["reason"] == "banned"
        assert (await receive_until(mod, "mod.action"))["action"] == "ban"

    ban = await Ban.objects.aget(room=room)
    assert ban.user_id == member.user_id and ban.membership_id is None
    # Reconnecting, with or without the resume token of the old peer.
    error, code = await hello_refused(member.user, cookie=cookie)
    assert (error["code"], code) == ("banned", 4003) and error["reason"] == "spam"
    error, code = await hello_refused(member.user, cookie=cookie, resume=welcome["resume"])
    assert (error["code"], code) == ("banned", 4003)

    # An old invite link does not bring the account back.
    @sync_to_async
    def follow_invite():
        client = Client()
        client.force_login(member.user)
        return client.get(f"/i/{invite.token}/")

    response = await follow_invite()
    assert response.status_code == 403
    assert b"banned" in response.content


async def test_ban_is_enforced_on_resume_within_the_grace_period(owner, member, room):
    """The banned socket had dropped (no goodbye): its peer waits for a resume."""
    cookie = await session_cookie_for(member.user)
    comm = await communicator(slug="standup", cookie=cookie)
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
    welcome = await receive_until(comm, "welcome")
    await comm.disconnect(code=1006)  # abrupt: the server holds the peer for a resume
    owner_member = await Membership.objects.aget(room=room, user=owner)
    # Banned from the admin or another instance while the socket was away.
    await sync_to_async(moderation.ban_create)(
        room_id=room.pk, actor_member_id=owner_member.pk, target_member_id=member.pk
    )
    error, code = await hello_refused(member.user, cookie=cookie, resume=welcome["resume"])
    assert (error["code"], code) == ("banned", 4003)


async def test_guest_is_banned_by_membership(owner, room, guest):
    cookie = await sync_to_async(guest_cookie)(room, guest)
    async with joined(owner) as (mod, _), joined(None, cookie=cookie) as (target, _):
        await mod.send_json_to({"type": "mod.ban", "member_id": guest.pk, "reason": "rude"})
        _, code = await closed_with(target, "mod.banned")
        assert code == 4003
    ban = await Ban.objects.aget(room=room)
    assert ban.membership_id == guest.pk and ban.user_id is None
    error, code = await hello_refused(None, cookie=cookie)
    assert (error["code"], code) == ("banned", 4003)


def _guest_joins(invite, name: str, address: str):
    """A new browser (a new session) asks to join as a guest from ``address``."""
    client = Client(REMOTE_ADDR=address)
    return client.post(f"/i/{invite.token}/", {"display_name": name})


def test_a_banned_guest_cannot_come_back_as_a_new_guest_from_the_same_address(owner, room, invite):
    assert _guest_joins(invite, "Gina", "203.0.113.5").status_code == 302
    gina = Membership.objects.get(room=room, display_name="Gina")
    assert gina.joined_from == "203.0.113.5"
    moderator = Membership.objects.get(room=room, user=owner)
    moderation.ban_create(room_id=room.pk, actor_member_id=moderator.pk, target_member_id=gina.pk)
    ban = Ban.objects.get(room=room)
    assert ban.membership_id == gina.pk and ban.user_id is None
    from django.contrib import admin

    assert admin.site._registry[Ban].guest_address(ban) == "203.0.113.5"  # the admin shows it

    # Cookies cleared, a new name: still the same place, still refused.
    again = _guest_joins(invite, "Not Gina", "203.0.113.5")
    assert again.status_code == 403
    assert "banned" in again.content.decode()
    assert not Membership.objects.filter(room=room, display_name="Not Gina").exists()
    # Another address is not affected, nor an account (member tests cover accounts).
    assert _guest_joins(invite, "Hugo", "198.51.100.7").status_code == 302
    moderation.ban_lift(ban=ban, by=owner)
    assert _guest_joins(invite, "Gina again", "203.0.113.5").status_code == 302


def _guest_session(invite, name: str, address: str) -> tuple[int, str]:
    """A guest joins through the invite page from ``address``: (membership id, session key)."""
    client = Client(REMOTE_ADDR=address)
    assert client.post(f"/i/{invite.token}/", {"display_name": name}).status_code == 302
    membership = Membership.objects.get(room=invite.room, display_name=name)
    return membership.pk, client.cookies["sessionid"].value


async def test_a_kicked_guest_stays_out_of_new_and_older_sessions_for_the_kick(owner, room, invite):
    from rooms import admission
    from videochat.redis import get_redis

    here, elsewhere = "203.0.113.5", "198.51.100.7"
    gina, gina_cookie = await sync_to_async(_guest_session)(invite, "Gina", here)
    # Another browser session of the same person, opened before the kick.
    _, older_cookie = await sync_to_async(_guest_session)(invite, "Gina 2", here)
    async with joined(owner) as (mod, _), joined(None, cookie=gina_cookie) as (target, _):
        await mod.send_json_to({"type": "mod.kick", "member_id": gina, "reason": "rude"})
        _, code = await closed_with(target, "mod.kicked")
        assert code == 4001
    # A new browser session through the same invite: refused by the invite page.
    again = await sync_to_async(_guest_joins)(invite, "Not Gina", here)
    assert again.status_code == 403 and "removed" in again.content.decode()
    assert not await Membership.objects.filter(display_name="Not Gina").aexists()
    # The session opened before the kick: refused at hello.
    error, code = await hello_refused(None, cookie=older_cookie)
    assert (error["code"], code) == ("kicked", 4001)
    # Guests from elsewhere are not affected.
    assert (await sync_to_async(_guest_joins)(invite, "Hugo", elsewhere)).status_code == 302
    # The kick holds for its documented duration, then lapses by itself.
    key = keys.kicked_from_key(room.pk, here)
    assert 0 < await get_redis().ttl(key) <= admission.KICK_COOLDOWN_S == 300
    await get_redis().delete(key, keys.kicked_key(room.pk, gina))  # 5 minutes later
    assert (await sync_to_async(_guest_joins)(invite, "Gina back", here)).status_code == 302
    log = await AuditLog.objects.aget(room=room)
    assert (log.action, log.detail) == ("kick", {"reason": "rude", "minutes": 5})


async def test_a_guest_session_opened_before_a_ban_from_the_same_address_is_closed_and_refused(
    owner, room, invite
):
    here = "203.0.113.5"
    gina, _ = await sync_to_async(_guest_session)(invite, "Gina", here)
    _, older_cookie = await sync_to_async(_guest_session)(invite, "Gina 2", here)
    _, other_cookie = await sync_to_async(_guest_session)(invite, "Hugo", "198.51.100.7")
    async with (
        joined(owner) as (mod, _),
        joined(None, cookie=older_cookie) as (older, _),
        joined(None, cookie=other_cookie) as (other, _),
    ):
        await mod.send_json_to({"type": "mod.ban", "member_id": gina, "reason": "spam"})
        # The open session of the same person goes at once, not at its next frame.
        _, code = await closed_with(older, "mod.banned")
        assert code == 4003
        await other.send_json_to({"type": "ping", "t": 1})
        assert (await receive_until(other, "pong"))["present"] is True
    error, code = await hello_refused(None, cookie=older_cookie)
    assert (error["code"], code) == ("banned", 4003)


def test_a_guest_address_that_is_not_an_ip_is_not_recorded(room, invite):
    membership = services.membership_join_as_guest(
        invite=invite, display_name="Ivo", address="unknown"
    )
    assert membership.joined_from is None


async def test_a_lifted_ban_lets_the_member_back(owner, member, room):
    owner_member = await Membership.objects.aget(room=room, user=owner)
    await sync_to_async(moderation.ban_create)(
        room_id=room.pk, actor_member_id=owner_member.pk, target_member_id=member.pk
    )
    error, _ = await hello_refused(member.user)
    assert error["code"] == "banned"
    ban = await Ban.objects.aget(room=room)
    await sync_to_async(moderation.ban_lift)(ban=ban, by=owner)
    async with joined(member.user) as (_, welcome):
        assert welcome["member"]["id"] == member.pk
    assert await sync_to_async(audit_actions)(room) == ["ban", "unban"]


# --- microphones --------------------------------------------------------------------------


async def test_force_mute_updates_everyone_and_tells_the_target(owner, member, room):
    async with joined(owner) as (mod, _), joined(member.user, audio=True) as (target, welcome):
        await receive_until(mod, "presence.join")
        await mod.send_json_to({"type": "mod.mute", "member_id": member.pk})
        assert (await receive_until(target, "mod.muted"))["by"] == "olivia"
        update = await receive_until(mod, "presence.update")
        assert update["peer"]["peer_id"] == welcome["peer_id"]
        assert update["peer"]["audio"] is False
        await mod.send_json_to({"type": "mod.mute", "member_id": member.pk, "request": True})
        assert (await receive_until(target, "mod.mute_request"))["by"] == "olivia"
    assert await sync_to_async(audit_actions)(room) == ["mute", "mute_request"]


async def test_mute_all_mutes_participants_not_moderators(owner, member, room):
    async with (
        joined(owner, audio=True) as (mod, mine),
        joined(member.user, audio=True) as (
            target,
            theirs,
        ),
    ):
        await receive_until(mod, "presence.join")
        await mod.send_json_to({"type": "mod.mute_all"})
        assert (await receive_until(target, "mod.mute_all"))["by"] == "olivia"
        update = await receive_until(mod, "presence.update")
        assert update["peer"]["peer_id"] == theirs["peer_id"] and not update["peer"]["audio"]
        states = {p["peer_id"]: p for p in await presence.presence_list(room_id=room.pk)}
        assert states[mine["peer_id"]]["audio"] is True
        assert states[theirs["peer_id"]]["audio"] is False


# --- who may come in ------------------------------------------------------------------------


async def test_lock_refuses_newcomers_live_and_unlock_lets_them_in(owner, member, room):
    async with joined(owner) as (mod, _):
        await mod.send_json_to({"type": "mod.lock", "locked": True})
        access = await receive_until(mod, "room.access")
        assert access["locked"] is True and access["by"] == "olivia"
        error, code = await hello_refused(member.user)
        assert (error["code"], code) == ("room_locked", 4423)
        await mod.send_json_to({"type": "mod.lock", "locked": False})
        assert (await receive_until(mod, "room.access"))["locked"] is False
        async with joined(member.user):
            pass
    assert await sync_to_async(audit_actions)(room) == ["lock", "unlock"]


async def test_lock_does_not_lock_out_someone_already_in_the_call(owner, member, room):
    async with joined(owner) as (mod, _), joined(member.user):
        await mod.send_json_to({"type": "mod.lock", "locked": True})
        await receive_until(mod, "room.access")
        # A second tab of a member already present is not a newcomer.
        async with joined(member.user) as (_, welcome):
            assert welcome["type"] == "welcome"


async def test_password_is_required_checked_and_never_echoed(owner, member, room):
    async with joined(owner) as (mod, _):
        await mod.send_json_to({"type": "mod.password", "password": "sesame-42"})
        access = await receive_until(mod, "room.access")
        assert access["password_required"] is True and "sesame" not in str(access)
    error, code = await hello_refused(member.user)
    assert (error["code"], code) == ("password_required", 4424)
    error, code = await hello_refused(member.user, password="wrong")
    assert (error["code"], code, error["wrong"]) == ("password_required", 4424, True)
    async with joined(member.user, password="sesame-42") as (_, welcome):
        assert welcome["member"]["id"] == member.pk
    room_row = await Room.objects.aget(pk=room.pk)
    assert room_row.password_hash.startswith("pbkdf2_") and "sesame" not in room_row.password_hash
    log = await AuditLog.objects.aget(room=room)
    assert log.action == "password_set" and "sesame" not in str(log.detail)


# --- roles ------------------------------------------------------------------------------------


async def test_owner_appoints_a_moderator_who_then_has_and_then_loses_powers(owner, member, room):
    async with joined(owner) as (own, _), joined(member.user) as (comm, _):
        await comm.send_json_to({"type": "mod.lock", "locked": True})
        assert (await receive_until(comm, "error"))["code"] == "forbidden"

        await own.send_json_to(
            {"type": "mod.set_role", "member_id": member.pk, "role": "moderator"}
        )
        assert (await receive_until(comm, "member.you"))["role"] == "moderator"
        role = await receive_until(own, "member.role")
        assert role == {"type": "member.role", "member_id": member.pk, "role": "moderator"}
        await comm.send_json_to({"type": "mod.lock", "locked": True})
        assert (await receive_until(comm, "room.access"))["locked"] is True

        await own.send_json_to(
            {"type": "mod.set_role", "member_id": member.pk, "role": "participant"}
        )
        assert (await receive_until(comm, "member.you"))["role"] == "participant"
        await comm.send_json_to({"type": "mod.lock", "locked": False})
        assert (await receive_until(comm, "error"))["code"] == "forbidden"
    assert await sync_to_async(audit_actions)(room) == ["role", "lock", "role"]


async def test_only_the_owner_changes_roles(owner, member, room):
    await Membership.objects.filter(pk=member.pk).aupdate(role=Role.MODERATOR)
    owner_member = await Membership.objects.aget(room=room, user=owner)
    async with joined(member.user) as (comm, _):
        await comm.send_json_to(
            {"type": "mod.set_role", "member_id": owner_member.pk, "role": "participant"}
        )
        assert (await receive_until(comm, "error"))["code"] == "forbidden"


# --- chat ----------------------------------------------------------------------------------------


async def test_hiding_a_message_removes_it_for_everyone_and_from_history(owner, member, room):
    async with joined(owner) as (mod, _), joined(member.user) as (comm, _):
        await comm.send_json_to({"type": "chat.send", "body": "buy pills", "client_id": "c-1"})
        seq = (await receive_until(comm, "chat.ack"))["seq"]
        await mod.send_json_to({"type": "mod.hide_message", "seq": seq})
        for sock in (comm, mod):
            assert (await receive_until(sock, "chat.hidden"))["seq"] == seq
        await comm.send_json_to({"type": "chat.sync", "after_seq": 0})
        batch = await receive_until(comm, "chat.batch")
        assert "buy pills" not in str(batch)
        # A participant cannot hide.
        await comm.send_json_to({"type": "mod.hide_message", "seq": seq})
        assert (await receive_until(comm, "error"))["code"] == "forbidden"
        await mod.send_json_to({"type": "mod.hide_message", "seq": 999})
        assert (await receive_until(mod, "error"))["code"] == "not_found"
    logs = await sync_to_async(list)(AuditLog.objects.filter(room=room))
    assert [(log.action, log.detail) for log in logs] == [("hide_message", {"seq": seq})]


# --- logout -------------------------------------------------------------------------------------


async def test_logout_closes_the_accounts_room_sockets(owner, member, room):
    @sync_to_async
    def login():
        client = Client()
        client.force_login(member.user)
        return client

    client = await login()
    async with joined(member.user, cookie=client.cookies["sessionid"].value) as (comm, _):
        await sync_to_async(client.post)("/accounts/logout/")
        ended, code = await closed_with(comm, "session.ended")
        assert code == 4401 and ended["reason"] == "logged_out"
