"""Call seats: a room's capacity counts people in the call, not sockets.

Driven through the real ASGI router with real Redis. A tab that previews or
chats holds no seat; entering the call (hello ``in_call: true`` or
``presence.update {in_call: true}``) takes one, leaving the call frees it; one
member holds at most one seat (a second tab takes it over); owners and
moderators always enter.
"""

from contextlib import AsyncExitStack

import pytest
from asgiref.sync import sync_to_async

from rooms import presence, services
from tests.conftest import make_user
from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def update_of(comm, peer_id: str, *, or_error: bool = False) -> dict:
    """The next presence.update about ``peer_id`` (or an error frame) on ``comm``."""
    for _ in range(50):
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == "error" and or_error:
            return frame
        if frame["type"] == "presence.update" and frame["peer"]["peer_id"] == peer_id:
            return frame
    raise AssertionError(f"no presence.update of {peer_id}")


async def enter_call(comm, welcome: dict, *, ref: str = "enter") -> dict:
    """Enter the call from a joined socket; the server's answer: our own
    presence.update, or an error."""
    await comm.send_json_to({"type": "presence.update", "in_call": True, "ref": ref})
    return await update_of(comm, welcome["peer_id"], or_error=True)


async def seated(room) -> list[tuple[int, str]]:
    return sorted(
        (p["member_id"], p["peer_id"])
        for p in await presence.presence_list(room_id=room.pk)
        if p["in_call"]
    )


@sync_to_async
def participants(django_user_model, invite, names):
    users = [make_user(django_user_model, name) for name in names]
    for user in users:
        services.membership_join(invite=invite, user=user)
    return users


async def test_six_tabs_of_one_member_hold_one_seat_and_the_owner_still_enters(room, owner, member):
    """The reported case: one participant's 6 tabs filled a 6-seat room."""
    assert room.capacity == 6
    async with AsyncExitStack() as tabs:
        for _ in range(6):
            await tabs.enter_async_context(joined(member.user, in_call=True))
        async with joined(owner, in_call=True) as (_, welcome):
            me = next(p for p in welcome["participants"] if p["peer_id"] == welcome["peer_id"])
            assert me["in_call"] is True
            members_in_call = [m for m, _ in await seated(room)]
            assert sorted(members_in_call) == sorted([member.pk, welcome["member"]["id"]])


async def test_a_second_tab_takes_over_the_seat_and_the_first_keeps_its_chat(room, owner, member):
    async with joined(owner) as (watcher, _), joined(member.user, in_call=True) as (first, w1):
        await receive_until(watcher, "presence.join")
        async with joined(member.user) as (second, w2):
            await receive_until(watcher, "presence.join")
            # Previewing in a second tab takes nothing from the first.
            assert await seated(room) == [(member.pk, w1["peer_id"])]
            mine = await enter_call(second, w2)
            assert mine["peer"]["peer_id"] == w2["peer_id"] and mine["peer"]["in_call"] is True
            # The older tab's call ends, with a reason it can show.
            left = await receive_until(first, "call.left")
            assert left == {"type": "call.left", "reason": "joined_elsewhere"}
            assert await seated(room) == [(member.pk, w2["peer_id"])]
            # The others drop the old tab from the call and connect to the new one.
            updates = [await receive_until(watcher, "presence.update") for _ in range(2)]
            by_peer = {u["peer"]["peer_id"]: u["peer"]["in_call"] for u in updates}
            assert by_peer == {w1["peer_id"]: False, w2["peer_id"]: True}
            # Its chat stays.
            await first.send_json_to({"type": "chat.send", "body": "still here", "client_id": "c1"})
            assert (await receive_until(first, "chat.ack"))["seq"] == 1


async def test_previewing_tabs_take_no_seat_and_leaving_the_call_frees_one(
    room, member, invite, django_user_model
):
    room.capacity = 2
    await room.asave()
    ann, ben = await participants(django_user_model, invite, ["ann", "ben"])
    async with (
        joined(member.user) as (marco, wm),
        joined(ann) as (ann_tab, wa),
        joined(ben) as (ben_tab, wb),
    ):
        # Three present, previewing: nobody was refused at hello.
        assert (await enter_call(marco, wm))["peer"]["in_call"] is True
        assert (await enter_call(ann_tab, wa))["peer"]["in_call"] is True
        full = await enter_call(ben_tab, wb, ref="b1")
        assert (full["code"], full["capacity"], full["ref"]) == ("room_full", 2, "b1")
        # Refused a seat, not the room: chat works.
        await ben_tab.send_json_to({"type": "chat.send", "body": "let me in", "client_id": "c"})
        await receive_until(ben_tab, "chat.ack")
        # Ann leaves the call (back to the preview): her seat goes to Ben.
        await ann_tab.send_json_to({"type": "presence.update", "in_call": False})
        assert (await update_of(ben_tab, wa["peer_id"]))["peer"]["in_call"] is False
        assert (await enter_call(ben_tab, wb))["peer"]["in_call"] is True
        assert len(await seated(room)) == 2


async def test_owners_and_moderators_enter_a_full_call(
    room, owner, member, invite, django_user_model
):
    room.capacity = 2
    await room.asave()
    (ann,) = await participants(django_user_model, invite, ["ann"])
    async with joined(member.user, in_call=True), joined(ann, in_call=True):
        async with joined(owner, in_call=True) as (_, welcome):
            assert welcome["peer_id"] in {peer for _, peer in await seated(room)}
            assert len(await seated(room)) == 3


async def test_a_reconnect_into_a_full_call_keeps_chat_and_says_room_full(
    room, member, invite, django_user_model
):
    room.capacity = 2
    await room.asave()
    ann, ben = await participants(django_user_model, invite, ["ann", "ben"])
    async with joined(member.user, in_call=True), joined(ann, in_call=True):
        async with joined(ben, in_call=True) as (comm, welcome):
            me = next(p for p in welcome["participants"] if p["peer_id"] == welcome["peer_id"])
            assert me["in_call"] is False
            assert (await receive_until(comm, "error"))["code"] == "room_full"
