"""Joins and leaves reach the room's webhooks: participant.* and call.started/ended."""

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
    async with joined(owner) as (alice, _):
        async with joined(member.user):
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
