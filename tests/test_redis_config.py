"""Where Redis is (videochat/redisconfig.py): one server or a Sentinel group.

Bad values stop start-up with the variable named; good ones become each
library's own Sentinel configuration (channel layer, Celery, django-rq).
"""

import pytest
from django.core.exceptions import ImproperlyConfigured

from videochat.redisconfig import RedisConfig, parse_sentinels, redis_config

SENTINEL = {"REDIS_SENTINELS": "10.0.0.1:26379,10.0.0.2:26380", "REDIS_SENTINEL_MASTER": "huddle"}


def test_without_any_setting_it_is_the_local_server():
    config = redis_config({})
    assert config == RedisConfig(url="redis://127.0.0.1:6379/0")
    assert not config.uses_sentinel


def test_one_server_passes_its_url_to_every_library():
    config = redis_config({"REDIS_URL": "redis://:pw@cache:6380/2"})
    assert config.channel_layer_host(socket_timeout=30) == {
        "address": "redis://:pw@cache:6380/2",
        "socket_timeout": 30,
    }
    assert config.celery_broker_url() == "redis://:pw@cache:6380/2"
    assert config.celery_transport_options() == {}
    assert config.rq_queue(DEFAULT_TIMEOUT=600) == {
        "URL": "redis://:pw@cache:6380/2",
        "DEFAULT_TIMEOUT": 600,
    }
    assert config.describe() == "redis://***@cache:6380/2"


def test_sentinels_are_parsed_with_the_default_port_and_ipv6():
    assert parse_sentinels("a:1, b ,[::1]:26390") == (("a", 1), ("b", 26379), ("::1", 26390))


def test_a_sentinel_group_becomes_each_librarys_own_sentinel_settings():
    config = redis_config(
        {
            **SENTINEL,
            "REDIS_PASSWORD": "p@ss/word",
            "REDIS_SENTINEL_PASSWORD": "watch",
            "REDIS_DB": "3",
        }
    )
    assert config.uses_sentinel
    assert config.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    host = config.channel_layer_host(socket_timeout=30)
    assert host["sentinels"] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert host["master_name"] == "huddle"
    assert host["password"] == "p@ss/word" and host["db"] == 3
    assert host["sentinel_kwargs"]["password"] == "watch"
    assert host["sentinel_kwargs"]["socket_timeout"] > 0  # a hung sentinel must not hang us
    # kombu: one sentinel:// URL per sentinel; the data password quoted in each.
    assert config.celery_broker_url() == (
        "sentinel://:p%40ss%2Fword@10.0.0.1:26379/3;sentinel://:p%40ss%2Fword@10.0.0.2:26380/3"
    )
    options = config.celery_transport_options()
    assert options["master_name"] == "huddle"
    assert options["sentinel_kwargs"]["password"] == "watch"
    queue = config.rq_queue(DEFAULT_TIMEOUT=600)
    assert queue["SENTINELS"] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert queue["MASTER_NAME"] == "huddle" and queue["DB"] == 3
    assert queue["PASSWORD"] == "p@ss/word"
    assert queue["SENTINEL_KWARGS"]["password"] == "watch"
    assert queue["DEFAULT_TIMEOUT"] == 600
    assert "pass" not in config.describe() and "watch" not in config.describe()


def test_kombu_reads_back_every_sentinel_and_the_password():
    from kombu import Connection

    config = redis_config({**SENTINEL, "REDIS_PASSWORD": "p@ss/word"})
    conn = Connection(config.celery_broker_url())
    assert conn.transport_cls == "sentinel"
    assert [url.split("@")[-1] for url in conn.alt] == ["10.0.0.1:26379/0", "10.0.0.2:26380/0"]
    assert conn.password == "p@ss/word"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"REDIS_SENTINELS": "a:26379"}, "REDIS_SENTINEL_MASTER"),
        ({**SENTINEL, "REDIS_SENTINEL_MASTER": "bad name"}, "REDIS_SENTINEL_MASTER"),
        ({**SENTINEL, "REDIS_SENTINELS": "a:26379,,b:1"}, "empty entry"),
        ({**SENTINEL, "REDIS_SENTINELS": "a:0"}, "port must be 1-65535"),
        ({**SENTINEL, "REDIS_SENTINELS": "a:70000"}, "port must be 1-65535"),
        ({**SENTINEL, "REDIS_SENTINELS": "a:x"}, "port must be 1-65535"),
        ({**SENTINEL, "REDIS_SENTINELS": "a b:1"}, "bad host name"),
        ({**SENTINEL, "REDIS_SENTINELS": "a:1,a:1"}, "twice"),
        ({**SENTINEL, "REDIS_DB": "16"}, "REDIS_DB"),
        ({**SENTINEL, "REDIS_DB": "-1"}, "REDIS_DB"),
        ({**SENTINEL, "REDIS_URL": "redis://x:6379/0"}, "not both"),
        ({"REDIS_SENTINEL_MASTER": "huddle"}, "without REDIS_SENTINELS"),
        ({"REDIS_PASSWORD": "pw"}, "without REDIS_SENTINELS"),
        ({"REDIS_DB": "1"}, "without REDIS_SENTINELS"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL must start with"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(environ, names):
    with pytest.raises(ImproperlyConfigured, match=names):
        redis_config(environ)


def test_the_settings_refuse_a_bad_sentinel_list_at_start_up():
    """Through the real settings module in a fresh interpreter: a failing start."""
    import os
    import subprocess
    import sys

    from videochat.devstack import BASE_DIR

    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DJANGO_"))}
    env.update(DJANGO_DEBUG="1", REDIS_SENTINELS="a:99999", REDIS_SENTINEL_MASTER="huddle")
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "REDIS_SENTINELS entry 'a:99999': port must be 1-65535" in proc.stderr
