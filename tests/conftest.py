"""Shared fixtures: personas, rooms, private services, live processes, browsers.

Tests run under ``bin/test``, which starts a private Redis and MongoDB-protocol
server (videochat.devstack) and exports their URLs; never the shared Redis.
"""

import asyncio
import functools
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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """TEST_TIMEOUT_FACTOR stretches pytest-timeout's per-test cap too (before it reads it)."""
    from videochat.devstack import timeout_factor

    factor = timeout_factor()
    if factor != 1:
        cap = config.option.timeout or float(config.getini("timeout") or 0)
        config.option.timeout = cap * factor


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


@pytest.fixture(autouse=True)
def _async_tests_settle(request):
    if request.node.get_closest_marker("asyncio"):
        request.getfixturevalue("_loop_settled")


@pytest.fixture
async def _loop_settled():
    """An async test's loop ends with no task of its own still running.

    Torn down last, in the test's loop: whatever the test left running (a
    socket's application it never closed, a per-loop listener) is cancelled
    here, again if it swallowed a cancellation, and a task that still will not
    end fails the test with its stack. Left to asyncio's own close, which
    cancels once and waits for ever, it hung CI until the 300 s timeout.
    """
    yield
    me = asyncio.current_task()
    others: set[asyncio.Task] = set()
    for _ in range(10):
        others = {task for task in asyncio.all_tasks() if task is not me and not task.done()}
        if not others:
            return
        for task in others:
            task.cancel()
        await asyncio.wait(others, timeout=0.5)
    stacks = []
    for task in others:
        frames = "".join(
            f"    {f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}\n"
            for f in task.get_stack()
        )
        stacks.append(f"  {task!r}\n{frames}")
    pytest.fail("tasks left by the test ignore cancellation:\n" + "".join(stacks), pytrace=False)


@functools.cache
def _password_hash() -> str:
    """PASSWORD hashed once, with the product's own hasher: every test user gets a real
    hash (logging in checks it as production would) without each paying the ~0.3 s of
    PBKDF2 (two or three users per test were a third of the suite's time)."""
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


def make_user(django_user_model, username: str, **extra):
    user = django_user_model.objects.create_user(
        username=username, password=None, email=f"{username}@example.com", **extra
    )
    user.password = _password_hash()
    user.save(update_fields=["password"])
    return user


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


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL (bin/test's second stage), only the tests that use the database:
    the rest ran already in the first stage, and on PostgreSQL they would prove nothing
    new (a quarter of that stage's time went to them)."""
    from django.conf import settings

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        return
    uses_db = {"db", "transactional_db"}
    keep, skip = [], []
    for item in items:
        needs = item.get_closest_marker("django_db") or uses_db & set(
            getattr(item, "fixturenames", ())
        )
        (keep if needs else skip).append(item)
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep
