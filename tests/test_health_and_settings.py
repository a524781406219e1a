import os
import subprocess
import sys

import pytest

from videochat.devstack import BASE_DIR
from videochat.redisconfig import RedisConfig

pytestmark = pytest.mark.django_db


def test_healthz_reports_each_store_ok_to_staff(client, django_user_model):
    staff = django_user_model.objects.create_user(username="ops", password="x", is_staff=True)
    client.force_login(staff)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "mongodb": "ok"},
    }


def test_healthz_tells_the_public_only_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_redis_is_unreachable_and_names_no_host_publicly(
    client, settings, django_user_model
):
    settings.REDIS = RedisConfig(url="redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert b"127.0.0.1" not in response.content and b"error" not in response.content
    staff = django_user_model.objects.create_user(username="ops", password="x", is_staff=True)
    client.force_login(staff)
    body = client.get("/healthz").json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("error:")
    assert body["checks"]["mongodb"] == "ok"


def test_healthz_reuses_its_clients_instead_of_opening_new_ones(client, monkeypatch):
    import redis
    from pymongo import MongoClient

    from videochat import health

    made = {"redis": 0, "mongo": 0}
    real_from_url = redis.Redis.from_url

    def counting_from_url(*args, **kwargs):
        made["redis"] += 1
        return real_from_url(*args, **kwargs)

    def counting_mongo(*args, **kwargs):
        made["mongo"] += 1
        return MongoClient(*args, **kwargs)

    monkeypatch.setattr(redis.Redis, "from_url", counting_from_url)
    monkeypatch.setattr(health, "MongoClient", counting_mongo)
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
    # At most one each for this process (none if an earlier test made them).
    assert made["redis"] <= 1 and made["mongo"] <= 1, made


def _manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PROD = {
    "DJANGO_SECRET_KEY": "a-long-random-production-key-7f3b9c1e5d2a8f4b6c0e9d1a3b5c7e9f",
    "DJANGO_ALLOWED_HOSTS": "chat.example.com",
}


def test_production_settings_pass_check_deploy():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PROD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", DJANGO_ALLOWED_HOSTS="chat.example.com")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_bad_boolean_in_environment_fails_loudly():
    result = _manage("check", DJANGO_DEBUG="perhaps", **PROD)
    assert result.returncode != 0
    assert "DJANGO_DEBUG" in result.stderr or "perhaps" in result.stderr


def test_checkservices_names_the_unreachable_store():
    result = _manage("checkservices", DJANGO_DEBUG="1", MONGODB_URI="mongodb://127.0.0.1:1/")
    assert result.returncode == 1
    assert "unreachable: mongodb" in result.stderr
