"""The call's story reaches the room's webhooks: participant.* when a peer enters or
leaves the call (not when a page opens), call.started/ended when it starts and ends."""

import pytest

from deliveries import services as deliveries
from deliveries.models import Webhook
from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = ["participant.joined", "participant.left", "call.started", "call.ended"]


@pytest.fixture
def sent(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(deliveries, "_enqueue", lambda **kw: calls.append(kw["payload"]))
    return calls


def story(sent):
    return [
        (p["event"], p["data"].get("display_name") or p["data"].get("by", {}).get("display_name"))
        for p in sent
    ]


async def test_join_and_leave_are_sent_to_subscribed_webhooks(room, owner, member, sent):
    await Webhook.objects.acreate(room=room, url="https://93.184.215.14/h", events=EVENTS)
    async with joined(owner, in_call=True) as (alice, _):
        async with joined(member.user, in_call=True):
            await receive_until(alice, "presence.join")
        await receive_until(alice, "presence.leave")
    assert story(sent) == [
        ("call.started", "olivia"),
        ("participant.joined", "olivia"),
        ("participant.joined", "marco"),
        ("participant.left", "marco"),
        ("participant.left", "olivia"),
        ("call.ended", None),
    ]
    assert {p["data"].get("reason") for p in sent if p["event"] == "participant.left"} == {
        "disconnect"
    }


async def test_unsubscribed_webhook_hears_nothing(room, owner, sent):
    await Webhook.objects.acreate(
        room=room, url="https://93.184.215.14/h", events=["message.posted"]
    )
    async with joined(owner):
        pass
    assert sent == []


async def test_opening_the_page_is_not_joining_the_call(room, owner, member, sent):
    await Webhook.objects.acreate(room=room, url="https://93.184.215.14/h", events=EVENTS)
    async with joined(owner) as (alice, _):
        async with joined(member.user):
            await receive_until(alice, "presence.join")
        await receive_until(alice, "presence.leave")
    assert sent == []


async def test_entering_and_leaving_the_call_while_staying_in_the_room(room, owner, member, sent):
    await Webhook.objects.acreate(room=room, url="https://93.184.215.14/h", events=EVENTS)
    async with joined(owner) as (alice, _):
        await alice.send_json_to({"type": "presence.update", "in_call": True})
        assert (await receive_until(alice, "presence.update"))["peer"]["in_call"] is True
        assert story(sent) == [("call.started", "olivia"), ("participant.joined", "olivia")]
        await alice.send_json_to({"type": "presence.update", "in_call": False})
        assert (await receive_until(alice, "presence.update"))["peer"]["in_call"] is False
        assert story(sent)[2:] == [("participant.left", "olivia"), ("call.ended", None)]
        assert sent[2]["data"]["reason"] == "left_call"
    assert len(sent) == 4  # the socket's close after leaving the call is no call event
