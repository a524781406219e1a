"""/readyz: this process's own readiness, for the load balancer (videochat/node.py)."""

import pytest
from django.test import Client

from videochat import node


@pytest.fixture
def fresh_node(monkeypatch):
    monkeypatch.setattr(node, "_draining", False)


def test_readyz_answers_any_host_without_touching_the_database(fresh_node, settings):
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    # No django_db mark: a database query here would fail the test.
    response = Client().get("/readyz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert response.content == b"ready\n"


def test_readyz_is_503_once_the_node_drains(fresh_node):
    node.drain_start()
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.content == b"draining\n"


async def test_readyz_on_the_async_path(fresh_node):
    from django.test import AsyncClient

    response = await AsyncClient().get("/readyz", headers={"host": "10.0.0.7"})
    assert response.status_code == 200
