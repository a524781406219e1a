"""A chat message leaves the product: room webhooks and mention emails (real Celery)."""

import json

import pytest

from deliveries.models import Webhook
from tests.fixtures.sockets import joined, receive_until
from tests.fixtures.workers import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


async def send_chat(user, body: str, client_id: str) -> dict:
    async with joined(user) as (comm, _):
        await comm.send_json_to({"type": "chat.send", "client_id": client_id, "body": body})
        return await receive_until(comm, "chat.ack")


async def test_posted_message_reaches_webhook_once_and_mentioned_offline_member_by_email(
    room, owner, member, member_user, receiver, celery_worker, tmp_path
):
    rec = receiver()
    await Webhook.objects.acreate(room=room, url=rec.url, events=["message.posted"])
    celery_worker()
    ack = await send_chat(owner, "hi @marco, agenda is up", "c-1")
    # A resend of the same client id is the same message: no second webhook.
    again = await send_chat(owner, "hi @marco, agenda is up", "c-1")
    assert again["seq"] == ack["seq"]

    hits = rec.wait_hits(1)
    payload = json.loads(hits[0].body)
    assert payload["event"] == "message.posted"
    assert payload["data"]["seq"] == ack["seq"]
    assert payload["data"]["body"] == "hi @marco, agenda is up"

    mail_dir = tmp_path / "mail"
    files = wait_until(
        lambda: list(mail_dir.glob("*.log")) if mail_dir.exists() else [], what="mention email"
    )
    text = "".join(f.read_text() for f in files)
    assert member_user.email in text and "olivia mentioned you" in text
    assert owner.email not in text
    assert len(rec.hits) == 1
