"""Mention emails are throttled per recipient and room: a burst is one mail at once and
one digest when the window ends, not a mail per message (real database and Redis)."""

import pytest
from django.conf import settings

from messaging import services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mails(monkeypatch):
    """Every email delivery enqueued, as (recipient, body); none reaches Celery."""
    from deliveries import services as deliveries

    sent: list[tuple[str, str]] = []

    def record(*, delivery_id, kind, target, payload):
        if kind == "email":
            sent.append((target, payload["body"]))

    monkeypatch.setattr(deliveries, "_enqueue_on_commit", record)
    return sent


def say(room, author, body, client_id):
    return services.message_create(
        room_id=room.pk, author_id=author.pk, body=body, client_id=client_id
    )


def test_fifteen_mentions_in_a_second_are_one_mail_now_and_one_digest(
    room, owner, member, member_user, mails
):
    owner_m = room.memberships.get(user=owner)
    for i in range(15):
        say(room, owner_m, f"@marco ping {i}", f"m{i}")
    assert len(mails) == 1, mails
    assert mails[0][0] == member_user.email and "ping 0" in mails[0][1]

    from messaging import mentions

    # The digest task (scheduled with a countdown) runs when the window ends.
    assert mentions.mention_digest_send(room_id=room.pk, member_id=member.pk) == 14
    assert len(mails) == 2
    digest = mails[1][1]
    assert "mentioned 14 times" in digest and "ping 1" in digest and "ping 14" in digest
    # Nothing left: a second run (a redelivered task) mails nothing.
    assert mentions.mention_digest_send(room_id=room.pk, member_id=member.pk) == 0
    assert len(mails) == 2


def test_the_throttle_is_per_recipient_and_room(room, owner, member, mails, django_user_model):
    from rooms import services as rooms
    from tests.conftest import make_user

    owner_m = room.memberships.get(user=owner)
    other = make_user(django_user_model, "nadia")
    rooms.membership_join(invite=room.invites.first(), user=other)
    say(room, owner_m, "@marco one", "a")
    say(room, owner_m, "@nadia one", "b")
    say(room, owner_m, "@marco two", "c")
    assert sorted(to for to, _ in mails) == ["marco@example.com", "nadia@example.com"]
    second = rooms.room_create(
        owner=owner, name="Retro", slug="retro", capacity=4, guest_access=False
    )
    marco_there = rooms.membership_join(invite=second.invites.first(), user=member.user)
    assert marco_there.pk != member.pk
    say(second, second.memberships.get(user=owner), "@marco over here", "d")
    assert [to for to, _ in mails].count("marco@example.com") == 2


def test_the_digest_is_scheduled_once_per_window_as_a_celery_task(room, owner, member, mails):
    import redis

    from messaging import mentions
    from videochat.celery import app

    # Queued by name (mentions imports no task): the name is one a worker
    # registers once it has imported the apps' tasks modules, as it does at start.
    app.loader.import_default_modules()
    assert mentions.DIGEST_TASK in app.tasks
    owner_m = room.memberships.get(user=owner)
    for i in range(3):
        say(room, owner_m, f"@marco {i}", f"s{i}")
    r = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    assert r.exists(mentions._key("sched", room.pk, member.pk))
    assert r.llen(mentions._key("lines", room.pk, member.pk)) == 2
    assert 0 < r.ttl(mentions._key("cool", room.pk, member.pk)) <= settings.MENTION_DIGEST_S
    # One digest task queued on the broker, not one per mention.
    queued = [m for m in r.lrange("celery", 0, -1) if "mention_digest_send" in m]
    assert len(queued) == 1, queued
