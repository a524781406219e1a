"""Shared fixtures: personas, rooms, private services, live processes, browsers.

Tests run under ``bin/test``, which starts a private Redis and MongoDB-protocol
server (videochat.devstack) and exports their URLs; never the shared Redis.
"""

import os
from urllib.parse import urlparse

import pytest

if not os.environ.get("VIDEOCHAT_RUN_DIR") or not os.environ.get("REDIS_URL"):
    pytest.exit(
        "Run the tests with bin/test (or: python -m videochat.devstack --fresh exec -- pytest); "
        "they need private Redis and MongoDB-protocol servers.",
        returncode=4,
    )

PASSWORD = "correct-horse-battery-9"

pytest_plugins = ["tests.fixtures.live", "tests.fixtures.workers"]


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty private Redis (never the shared one)."""
    import redis

    url = os.environ["REDIS_URL"]
    if urlparse(url).port == 6379:
        raise RuntimeError("refusing to flush the shared Redis on 6379")
    redis.Redis.from_url(url).flushdb()
    # A fresh channel layer per test: channels_redis keeps per-channel locks bound
    # to the event loop that made them, and each async test has its own loop, so
    # a receiver left over from an earlier test poisons the next one.
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield


def make_user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.com", **extra
    )


@pytest.fixture
def owner(django_user_model):
    return make_user(django_user_model, "olivia")


@pytest.fixture
def member_user(django_user_model):
    return make_user(django_user_model, "marco")


@pytest.fixture
def outsider(django_user_model):
    return make_user(django_user_model, "oscar")


@pytest.fixture
def room(owner):
    from rooms import services

    return services.room_create(
        owner=owner, name="Standup", slug="standup", capacity=6, guest_access=True
    )


@pytest.fixture
def invite(room):
    return room.invites.first()


@pytest.fixture
def member(room, member_user, invite):
    from rooms import services

    return services.membership_join(invite=invite, user=member_user)
