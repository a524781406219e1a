"""Chat over the room socket, driven through the real ASGI router."""

import time

import pytest

from messaging.conf import BODY_MAX_CHARS, CHAT_LIMIT
from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def subscribe(comm, after_seq=0):
    """What every client does after welcome: sync (which also subscribes to wake-ups)."""
    await comm.send_json_to({"type": "chat.sync", "after_seq": after_seq})
    return await receive_until(comm, "chat.batch")


async def send(comm, body="hi", client_id="c1", **extra):
    await comm.send_json_to({"type": "chat.send", "body": body, "client_id": client_id, **extra})


async def test_send_is_acked_after_commit_and_broadcast_to_the_room(
    room, owner, member_user, member
):
    async with joined(owner) as (alice, _), joined(member_user) as (marco, _):
        await subscribe(marco)
        await send(alice, body="<b>hello</b>", client_id="a1")
        ack = await receive_until(alice, "chat.ack")
        assert ack == {"type": "chat.ack", "client_id": "a1", "seq": 1}
        seen = await receive_until(marco, "chat.message")
        assert seen["seq"] == 1 and seen["body"] == "<b>hello</b>"
        assert seen["author_name"] == "olivia" and seen["client_id"] == "a1"
        from messaging.models import Message

        assert await Message.objects.filter(room=room, seq=1).aexists()


async def test_resend_after_reconnect_is_acked_with_the_original_seq(room, owner, member):
    async with joined(owner) as (comm, _):
        await send(comm, client_id="x")
        first = await receive_until(comm, "chat.ack")
    async with joined(owner) as (comm, _):
        await send(comm, body="other text", client_id="x")
        again = await receive_until(comm, "chat.ack")
        await comm.send_json_to({"type": "chat.sync", "after_seq": 0})
        batch = await receive_until(comm, "chat.batch")
    assert again == first
    assert [m["seq"] for m in batch["messages"]] == [1]


async def test_resend_is_not_broadcast_again(room, owner, member_user, member):
    async with joined(owner) as (alice, _), joined(member_user) as (marco, _):
        await subscribe(marco)
        await send(alice, client_id="x")
        await receive_until(alice, "chat.ack")
        await receive_until(marco, "chat.message")
        await send(alice, client_id="x")
        await receive_until(alice, "chat.ack")
        await send(alice, client_id="y")
        await receive_until(alice, "chat.ack")
        nxt = await receive_until(marco, "chat.message")
        assert nxt["seq"] == 2 and nxt["client_id"] == "y"


async def test_resume_returns_everything_after_the_last_seq_in_order(room, owner, member):
    async with joined(owner) as (comm, _):
        for i in range(5):
            await send(comm, body=f"m{i}", client_id=f"c{i}")
            await receive_until(comm, "chat.ack")
    async with joined(owner) as (comm, _):
        await comm.send_json_to({"type": "chat.sync", "after_seq": 2, "limit": 2})
        batch = await receive_until(comm, "chat.batch")
        assert [m["seq"] for m in batch["messages"]] == [3, 4]
        assert batch["has_more"] and batch["head"] == 5 and batch["after_seq"] == 2
        await comm.send_json_to({"type": "chat.sync", "after_seq": 4})
        batch = await receive_until(comm, "chat.batch")
        assert [m["body"] for m in batch["messages"]] == ["m4"] and not batch["has_more"]


async def test_history_pages_backwards_for_late_joiners(room, owner, member_user, member):
    async with joined(owner) as (comm, _):
        for i in range(3):
            await send(comm, body=f"m{i}", client_id=f"c{i}")
            await receive_until(comm, "chat.ack")
    async with joined(member_user) as (late, _):
        await late.send_json_to({"type": "chat.history", "limit": 2})
        page = await receive_until(late, "chat.page")
        assert [m["seq"] for m in page["messages"]] == [2, 3] and page["has_more"]
        await late.send_json_to({"type": "chat.history", "before_seq": 2})
        page = await receive_until(late, "chat.page")
        assert [m["seq"] for m in page["messages"]] == [1] and not page["has_more"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "chat.send", "body": "  ", "client_id": "e"}, "empty_body"),
        (
            {"type": "chat.send", "body": "x" * (BODY_MAX_CHARS + 1), "client_id": "e"},
            "body_too_long",
        ),
        ({"type": "chat.send", "body": "hi"}, "bad_request"),
        # Text the database cannot store fails alone, at validation.
        ({"type": "chat.send", "body": "x\ud800y", "client_id": "e"}, "bad_request"),
        ({"type": "chat.send", "body": "a\x00b", "client_id": "e"}, "bad_request"),
        ({"type": "chat.send", "body": "\u202egnp.exe", "client_id": "e"}, "bad_request"),
        ({"type": "chat.sync", "after_seq": 99}, "bad_seq"),
        ({"type": "chat.sync", "after_seq": -1}, "bad_request"),
        ({"type": "chat.sync", "after_seq": "1"}, "bad_request"),
        ({"type": "chat.history", "before_seq": 5, "limit": 1000}, "bad_request"),
        ({"type": "chat.nonsense"}, "unknown_type"),
    ],
)
async def test_bad_input_gets_an_error_and_the_socket_stays_open(room, owner, frame, code):
    async with joined(owner) as (comm, _):
        await comm.send_json_to({**frame, "ref": "r1"})
        error = await receive_until(comm, "error")
        assert error["code"] == code and error["ref"] == "r1"
        await send(comm, client_id="after")
        assert (await receive_until(comm, "chat.ack"))["seq"] == 1


async def test_bad_seq_tells_the_head(room, owner):
    async with joined(owner) as (comm, _):
        await send(comm)
        await receive_until(comm, "chat.ack")
        await comm.send_json_to({"type": "chat.sync", "after_seq": 5})
        error = await receive_until(comm, "error")
        assert error["code"] == "bad_seq" and error["head"] == 1


async def test_invalid_json_gets_bad_json(room, owner):
    async with joined(owner) as (comm, _):
        await comm.send_to(text_data="{not json")
        assert (await receive_until(comm, "error"))["code"] == "bad_json"


async def next_reply(comm):
    while True:
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] in ("chat.ack", "error"):
            return frame


async def test_flooding_is_rate_limited_per_user_across_sockets(room, owner):
    total = CHAT_LIMIT.burst + 10
    started = time.monotonic()
    async with joined(owner) as (one, _), joined(owner) as (two, _):
        socks = [one, two]
        for i in range(total):
            await send(socks[i % 2], client_id=f"f{i}")
        replies = [await next_reply(socks[i % 2]) for i in range(total)]
        elapsed = time.monotonic() - started
    acks = [f for f in replies if f["type"] == "chat.ack"]
    limited = [f for f in replies if f["type"] == "error"]
    # The bucket is per user, shared by both sockets (and every server).
    # The bucket refills at CHAT_LIMIT.rate while the flood is being written.
    assert CHAT_LIMIT.burst <= len(acks) <= CHAT_LIMIT.burst + CHAT_LIMIT.rate * elapsed + 1
    assert len(limited) == total - len(acks) > 0
    assert all(f["code"] == "rate_limited" and f["retry_after"] > 0 for f in limited)


async def test_typing_reaches_the_others_but_not_self(room, owner, member_user, member):
    async with joined(owner) as (alice, welcome), joined(member_user) as (marco, _):
        await alice.send_json_to({"type": "chat.typing"})
        typing = await receive_until(marco, "chat.typing")
        assert typing["display_name"] == "olivia" and typing["peer_id"] == welcome["peer_id"]
        await alice.send_json_to({"type": "ping"})
        assert (await alice.receive_json_from())["type"] in ("pong", "presence.join")


async def test_a_socket_gets_wake_ups_only_after_its_first_chat_frame(
    room, owner, member_user, member
):
    async with joined(owner) as (alice, _), joined(member_user) as (marco, _):
        await send(alice, client_id="before")
        await receive_until(alice, "chat.ack")
        batch = await subscribe(marco)
        assert [m["client_id"] for m in batch["messages"]] == ["before"]
        await send(alice, client_id="after")
        assert (await receive_until(marco, "chat.message"))["client_id"] == "after"


async def test_resend_of_a_hidden_message_is_acked_without_its_body(room, owner, member):
    from channels.db import database_sync_to_async

    from messaging import services

    async with joined(owner) as (comm, _):
        await send(comm, body="oops", client_id="h")
        await receive_until(comm, "chat.ack")
        owner_m = await room.memberships.aget(user=owner)
        await database_sync_to_async(services.message_hide)(
            room_id=room.pk, seq=1, by_member_id=owner_m.pk
        )
        await send(comm, body="oops", client_id="h")
        assert await receive_until(comm, "chat.ack") == {
            "type": "chat.ack",
            "client_id": "h",
            "seq": 1,
        }


async def test_hidden_message_is_broadcast_and_served_without_body(
    room, owner, member_user, member
):
    from channels.db import database_sync_to_async

    from messaging import services

    async with joined(owner) as (alice, _), joined(member_user) as (marco, _):
        await send(marco, body="rude", client_id="r")
        await receive_until(marco, "chat.ack")
        owner_m = await room.memberships.aget(user=owner)
        await database_sync_to_async(services.message_hide)(
            room_id=room.pk, seq=1, by_member_id=owner_m.pk
        )
        assert (await receive_until(alice, "chat.hidden"))["seq"] == 1
        await alice.send_json_to({"type": "chat.sync", "after_seq": 0})
        batch = await receive_until(alice, "chat.batch")
        assert batch["messages"] == [{"seq": 1, "hidden": True}]


async def test_pipelined_sends_are_acked_in_order_and_share_commits(room, owner):
    """A burst (an outbox flushed after a reconnect) does not wait one commit per message."""
    from messaging import writer

    batches = []
    real = writer.services.messages_create

    def counting(*, items):
        batches.append(len(items))
        return real(items=items)

    n = 15
    async with joined(owner) as (comm, _):
        writer.services.messages_create = counting
        try:
            for i in range(n):
                await send(comm, body=f"m{i}", client_id=f"b{i}")
            acks = [await receive_until(comm, "chat.ack") for _ in range(n)]
        finally:
            writer.services.messages_create = real
    assert [a["client_id"] for a in acks] == [f"b{i}" for i in range(n)]
    assert [a["seq"] for a in acks] == list(range(1, n + 1))
    from messaging.models import Message

    bodies = [
        b
        async for b in Message.objects.filter(room=room)
        .order_by("seq")
        .values_list("body", flat=True)
    ]
    assert bodies == [f"m{i}" for i in range(n)]
    # One socket's sends no longer wait for each other's commit: they share batches.
    assert sum(batches) == n and len(batches) < n, batches


async def test_a_failed_write_is_answered_unavailable_and_the_resend_lands(
    room, owner, monkeypatch
):
    from django.db import OperationalError

    from messaging import services

    real = services.messages_create

    def broken(*, items):
        raise OperationalError("database is locked")

    async with joined(owner) as (comm, _):
        monkeypatch.setattr(services, "messages_create", broken)
        await send(comm, client_id="u1", ref="u1")
        error = await receive_until(comm, "error")
        assert error["code"] == "unavailable" and error["ref"] == "u1"
        assert error["retry_after"] > 0
        monkeypatch.setattr(services, "messages_create", real)
        await send(comm, client_id="u1", ref="u1")  # the outbox resends the same id
        ack = await receive_until(comm, "chat.ack")
    assert ack == {"type": "chat.ack", "client_id": "u1", "seq": 1}


async def test_messages_committed_together_reach_a_socket_in_one_frame(
    room, owner, member_user, member
):
    from messaging import fanout

    async with joined(member_user) as (marco, _):
        await subscribe(marco)
        one = {"seq": 1, "client_id": "a", "author_id": 1, "author_name": "x", "body": "1"}
        two = {**one, "seq": 2, "client_id": "b", "body": "2"}
        await fanout.rooms_publish({room.pk: [one]})
        assert await receive_until(marco, "chat.message") == {"type": "chat.message", **one}
        await fanout.rooms_publish({room.pk: [one, two]})
        frame = await receive_until(marco, "chat.messages")
    assert frame == {"type": "chat.messages", "messages": [one, two]}


async def test_one_unstorable_item_fails_alone_and_the_rest_of_its_batch_lands(
    room, owner, member, monkeypatch
):
    """A content rule validation does not know fails the batch's INSERT: the
    writer retries item by item, so only that sender gets an error (a
    permanent bad_request), and the others in the batch are acknowledged."""
    import asyncio

    from messaging import services, writer
    from rooms.models import Membership
    from videochat.errors import BadRequest

    # Let a lone surrogate reach the database driver, as an unforeseen bad value would.
    monkeypatch.setattr(services, "text_check", lambda value, **_: value, raising=False)
    owner_m = await Membership.objects.aget(room=room, user=owner)
    batches = []
    real = services.messages_create

    def counting(*, items):
        batches.append(len(items))
        return real(items=items)

    monkeypatch.setattr(services, "messages_create", counting)
    # Queued without yielding to the loop: the three share one group commit.
    pending = [
        writer.message_enqueue(room_id=room.pk, author_id=owner_m.pk, body="one", client_id="a"),
        writer.message_enqueue(
            room_id=room.pk, author_id=member.pk, body="x\ud800y", client_id="b"
        ),
        writer.message_enqueue(room_id=room.pk, author_id=owner_m.pk, body="two", client_id="c"),
    ]
    first, bad, last = await asyncio.gather(*pending, return_exceptions=True)
    assert batches[0] == 3, batches
    assert isinstance(bad, BadRequest) and bad.code == "bad_request"
    assert not isinstance(first, BaseException) and not isinstance(last, BaseException)
    assert (first["message"]["seq"], last["message"]["seq"]) == (1, 2)
    from messaging.models import Message

    bodies = [b async for b in Message.objects.order_by("seq").values_list("body", flat=True)]
    assert bodies == ["one", "two"]
