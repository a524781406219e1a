"""Sockets that should be gone are closed, on the real daphne, even when nobody
tells them (the notice lost) and they never send a frame themselves."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from rooms import keys
from tests.conftest import PASSWORD
from tests.fixtures import rawsocket
from tests.fixtures.live import daphne_service
from tests.fixtures.sockets import session_cookie_for
from videochat.closecodes import CloseCode
from videochat.redis import get_redis

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def checking_daphne(django_db_setup, django_db_blocker):
    service = daphne_service(SOCKET_CHECK_INTERVAL_S="0.3").start()
    yield service
    service.stop()


@pytest.fixture
def base(checking_daphne, transactional_db):
    return f"http://127.0.0.1:{checking_daphne.port}"


async def test_a_socket_reaped_for_missing_heartbeats_is_closed(base, room, owner, member):
    alice = await rawsocket.connect(base, cookie=await session_cookie_for(owner))
    bob = await rawsocket.connect(base, cookie=await session_cookie_for(member.user))
    try:
        await rawsocket.hello(alice)
        wb = await rawsocket.hello(bob)
        await rawsocket.recv_until(alice, "presence.join")
        # Bob's heartbeats stopped long ago (a stalled path that never closes).
        await get_redis().zadd(f"presence:{room.id}:seen", {wb["peer_id"]: 1})
        await alice.send(json.dumps({"type": "ping", "t": 1}))
        leave = await rawsocket.recv_until(alice, "presence.leave")
        assert leave["peer_id"] == wb["peer_id"]
        # The room saw bob leave: his socket must not go on receiving the room.
        code, _ = await rawsocket.close_code(bob, timeout=5)
        assert code == CloseCode.GONE
    finally:
        await alice.close()
        await bob.close()


async def test_a_silent_member_banned_while_the_notice_was_lost_is_closed(
    base, room, owner, member
):
    from rooms.models import Ban, Membership

    bob = await rawsocket.connect(base, cookie=await session_cookie_for(member.user))
    try:
        await rawsocket.hello(bob)
        owner_member = await Membership.objects.aget(room=room, user=owner)
        # The ban is written, its live notice never arrives; bob sends nothing.
        await Ban.objects.acreate(
            room=room, user=member.user, display_name="marco", banned_by_id=owner_member.user_id
        )
        await get_redis().incr(keys.modrev_key(room.pk))
        code, frames = await rawsocket.close_code(bob, timeout=5)
        assert code == CloseCode.BANNED
        assert [f["type"] for f in frames][-1:] == ["mod.banned"]
    finally:
        await bob.close()


def change_password(client: Client) -> None:
    new = PASSWORD + "-new"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302, response


async def test_a_password_change_ends_the_other_sessions_sockets(base, room, member):
    other_cookie = await session_cookie_for(member.user)  # another browser
    changer = Client()
    await sync_to_async(changer.force_login)(member.user)
    changer_cookie = changer.cookies["sessionid"].value
    other = await rawsocket.connect(base, cookie=other_cookie)
    mine = await rawsocket.connect(base, cookie=changer_cookie)
    try:
        await rawsocket.hello(other)
        await rawsocket.hello(mine)
        await sync_to_async(change_password)(changer)
        # The other browser's session is invalid now: ended, told why.
        code, frames = await rawsocket.close_code(other, timeout=5)
        assert code == CloseCode.UNAUTHENTICATED
        assert {"type": "session.ended", "reason": "password_changed"} in frames
        # The changing browser got a new session key: reconnect, not "log in".
        code, _ = await rawsocket.close_code(mine, timeout=5)
        assert code == CloseCode.GONE
        again = await rawsocket.connect(base, cookie=changer.cookies["sessionid"].value)
        try:
            assert (await rawsocket.hello(again))["type"] == "welcome"
        finally:
            await again.close()
        refused = await rawsocket.connect(base, cookie=other_cookie)
        assert (await rawsocket.close_code(refused))[0] == CloseCode.UNAUTHENTICATED
    finally:
        await other.close()
        await mine.close()


async def test_a_password_change_whose_notice_was_lost_is_caught_by_the_check(base, member):
    from django.contrib.auth.hashers import make_password

    from rooms.keys import authrev_key

    ws = await rawsocket.connect(base, cookie=await session_cookie_for(member.user))
    try:
        await rawsocket.hello(ws)
        # The password changes without any event reaching the socket.
        await (
            type(member.user)
            .objects.filter(pk=member.user.pk)
            .aupdate(password=make_password("changed-elsewhere-1"))
        )
        await get_redis().incr(authrev_key(member.user.pk))
        code, frames = await rawsocket.close_code(ws, timeout=5)
        assert code == CloseCode.UNAUTHENTICATED
        assert {"type": "session.ended", "reason": "password_changed"} in frames
    finally:
        await ws.close()
