"""Token buckets in (a private) Redis: several limits and a read in one round trip."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from videochat import ratelimit
from videochat.errors import RateLimited
from videochat.redis import get_redis

WIDE = ratelimit.Limit("t-wide", rate=1, burst=10)
NARROW = ratelimit.Limit("t-narrow", rate=0.5, burst=1)


async def tokens(limit, key):
    return float(await get_redis().hget(f"rl:{limit.name}:{key}", "tokens"))


async def test_all_buckets_are_spent_or_none():
    await ratelimit.hit_many([(WIDE, "k"), (NARROW, "k")])
    assert await tokens(WIDE, "k") == pytest.approx(9, abs=0.1)
    with pytest.raises(RateLimited) as refused:
        await ratelimit.hit_many([(WIDE, "k"), (NARROW, "k")])
    # The narrow bucket refused, so the wide one kept its token.
    assert await tokens(WIDE, "k") == pytest.approx(9, abs=0.1)
    # The wait is the refusing bucket's: one token at 0.5/s.
    assert 1.5 < refused.value.data["retry_after"] <= 2


async def test_a_read_rides_along_in_the_same_call():
    await get_redis().set("modrev:42", "7")
    assert await ratelimit.hit_many([(WIDE, "r")], read="modrev:42") == "7"
    assert await ratelimit.hit_many([(WIDE, "r")], read="modrev:missing") is None
    assert await ratelimit.hit_many([(WIDE, "r")]) is None


async def test_the_script_is_loaded_again_after_redis_forgets_it():
    await ratelimit.hit(WIDE, "s")
    await get_redis().script_flush()
    await ratelimit.hit(WIDE, "s")
    assert await tokens(WIDE, "s") == pytest.approx(8, abs=0.1)


def test_a_limit_setting_keeps_its_default_or_fails_clearly(monkeypatch):
    from videochat.settings import env_positive

    assert env_positive("T_RATE_PER_S", default=5) == 5
    assert env_positive("T_RATE_BURST", default=20) == 20
    monkeypatch.setenv("T_RATE_PER_S", "250")
    monkeypatch.setenv("T_RATE_BURST", "1000")
    assert env_positive("T_RATE_PER_S", default=5) == 250
    assert env_positive("T_RATE_BURST", default=20) == 1000
    for bad in ("fast", "0", "-3"):
        monkeypatch.setenv("T_RATE_BURST", bad)
        with pytest.raises(ImproperlyConfigured, match="T_RATE_BURST"):
            env_positive("T_RATE_BURST", default=20)


def test_the_rate_limits_are_read_from_their_settings():
    from django.conf import settings

    from messaging.conf import CHAT_LIMIT
    from rooms.security import IP_FRAME_LIMIT, USER_FRAME_LIMIT

    assert (CHAT_LIMIT.rate, CHAT_LIMIT.burst) == (settings.CHAT_RATE_PER_S, 20)
    assert settings.CHAT_RATE_PER_S == 5.0
    assert (USER_FRAME_LIMIT.rate, USER_FRAME_LIMIT.burst) == (50.0, 200)
    assert (IP_FRAME_LIMIT.rate, IP_FRAME_LIMIT.burst) == (150.0, 600)
