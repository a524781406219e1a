"""/metrics (access, what a real socket session and a real Celery worker record,
store figures read at scrape time, store errors) and the ids on every log line."""

import json
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import structlog
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection
from django.test import AsyncClient
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from deliveries import breaker, deadletters
from deliveries.models import Webhook
from messaging import services as chat_services
from tests.fixtures.sockets import joined, receive_until
from tests.fixtures.workers import wait_until
from videochat import metrics, metricsview, requestid
from videochat.devstack import free_port
from videochat.redisconfig import RedisConfig

TOKEN = "metrics-test-token-0123456789"
BASE_DIR = Path(__file__).resolve().parent.parent


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def scrape_now() -> dict:
    return samples(generate_latest(metricsview.registry()).decode())


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"Authorization": f"Bearer {TOKEN}"}


# --- access -------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_refuse_anonymous_plain_users_and_wrong_tokens(client, django_user_model, token):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and "huddle_" not in anonymous.text
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
    client.force_login(django_user_model.objects.create_user("plain", "p@example.com", "x"))
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_without_a_token_setting_no_bearer_is_accepted(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


@pytest.mark.django_db
def test_metrics_serve_the_token_and_staff(client, admin_client, token):
    response = client.get("/metrics", headers=token)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert "huddle_sockets_open" in response.text
    assert "huddle_node_capacity_sockets" in response.text  # /metrics/scaling folded in
    assert admin_client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_scaling_uses_the_same_access(client, admin_client, token):
    assert client.get("/metrics/scaling").status_code == 401
    assert client.get("/metrics/scaling", headers=token).status_code == 200
    assert "huddle_node_capacity_sockets" in admin_client.get("/metrics/scaling").text


# --- a real socket session ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_socket_session_shows_in_the_scrape(room, owner, token):
    web = AsyncClient()

    async def scrape() -> dict:
        response = await web.get("/metrics", headers=token)
        assert response.status_code == 200 and len(response["X-Request-ID"]) == 32
        return samples(response.content.decode())

    before = await scrape()
    async with joined(owner) as (comm, welcome):
        await comm.send_json_to({"type": "chat.sync", "after_seq": 0})
        await receive_until(comm, "chat.batch")
        await comm.send_json_to({"type": "chat.send", "body": "hi", "client_id": "m1"})
        await receive_until(comm, "chat.ack")
        await receive_until(comm, "chat.message")
        await comm.send_json_to({"type": "no.such.type"})
        await receive_until(comm, "error")
        during = await scrape()
    after = await scrape()

    def grew(name: str, **labels: str) -> float:
        return value(during, name, **labels) - value(before, name, **labels)

    assert grew("huddle_frames_in_total", type="hello") == 1
    assert grew("huddle_frames_in_total", type="chat.send") == 1
    assert grew("huddle_frames_in_total", type="chat.sync") == 1
    assert grew("huddle_frames_in_total", type="unknown") == 1  # never the client's text
    assert value(during, "huddle_frames_in_total", type="no.such.type") == 0
    for sent in ("welcome", "chat.batch", "chat.ack", "chat.message", "error"):
        assert grew("huddle_frames_out_total", type=sent) >= 1, sent
    assert grew("huddle_chat_commit_seconds_count") == 1
    assert grew("huddle_sockets_open") == 1
    assert value(after, "huddle_sockets_open") == value(before, "huddle_sockets_open")
    room_id = str(welcome["room"]["id"])
    assert value(during, "huddle_presence_peers", room=room_id) == 1
    assert value(during, "huddle_scrape_source_up", source="redis") == 1


@sync_to_async
def post_directly(room, user) -> None:
    from rooms.models import Membership

    author = Membership.objects.get(room=room, user=user)
    chat_services.message_create(room_id=room.pk, author_id=author.pk, body="x", client_id="g1")


@pytest.mark.django_db(transaction=True)
async def test_a_sync_that_returns_missed_messages_counts_as_a_repaired_gap(room, owner):
    before = await sync_to_async(scrape_now)()
    await post_directly(room, owner)
    async with joined(owner) as (comm, _):
        await comm.send_json_to({"type": "chat.sync", "after_seq": 1})
        await receive_until(comm, "chat.batch")  # nothing missed
        await comm.send_json_to({"type": "chat.sync", "after_seq": 0})
        await receive_until(comm, "chat.batch")  # one message missed
    after = await sync_to_async(scrape_now)()
    grew = value(after, "huddle_wakeup_gaps_repaired_total") - value(
        before, "huddle_wakeup_gaps_repaired_total"
    )
    assert grew == 1
    assert (
        value(after, "huddle_wakeup_gap_messages_total")
        - value(before, "huddle_wakeup_gap_messages_total")
        == 1
    )


@pytest.mark.django_db(transaction=True)
async def test_signals_are_counted_relayed_and_refused(room, owner, member_user, member):
    before = await sync_to_async(scrape_now)()
    async with joined(owner) as (alice, _), joined(member_user) as (marco, marco_welcome):
        await alice.send_json_to({"type": "signal.offer", "to": "nobody-here", "sdp": "v=0"})
        await receive_until(alice, "error")
        to = marco_welcome["peer_id"]
        await alice.send_json_to({"type": "signal.offer", "to": to, "sdp": "v=0"})
        await receive_until(marco, "signal.offer")
    after = await sync_to_async(scrape_now)()

    def grew(outcome: str) -> float:
        labels = {"type": "signal.offer", "outcome": outcome}
        return value(after, "huddle_signals_total", **labels) - value(
            before, "huddle_signals_total", **labels
        )

    assert grew("relayed") == 1 and grew("refused_unknown_peer") == 1


# --- deliveries, dead letters, breakers ----------------------------------------


def test_a_real_celery_worker_counts_deliveries_by_outcome(room, receiver, celery_worker, settings):
    from deliveries import services

    before = scrape_now()
    rec = receiver(fail_times=1)
    Webhook.objects.create(room=room, url=rec.url, events=["message.posted"])
    port = free_port()
    settings.METRICS_TOKEN = TOKEN
    worker = celery_worker(
        METRICS_TOKEN=TOKEN, METRICS_WORKER_PORT=str(port), METRICS_WORKER_BIND="127.0.0.1"
    )
    with structlog.contextvars.bound_contextvars(request_id="trace-3f9a-emit"):
        assert services.room_event_emit(room_id=room.pk, event="message.posted", data={})
    rec.wait_hits(2)

    def counted(outcome: str) -> float:
        labels = {"kind": "webhook", "outcome": outcome}
        return value(scrape_now(), "huddle_deliveries_total", **labels) - value(
            before, "huddle_deliveries_total", **labels
        )

    # Written by the worker's child process, summed by this process's scrape.
    wait_until(lambda: counted("delivered") == 1, what="the delivered outcome in the scrape")
    assert counted("retry") == 1
    # The worker's own page (a worker in a container of its own): token only.
    url = f"http://127.0.0.1:{port}/metrics"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)  # noqa: S310 - http://127.0.0.1
    assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        worker_page = samples(response.read().decode())
    delivered = {"kind": "webhook", "outcome": "delivered"}
    assert value(worker_page, "huddle_deliveries_total", **delivered) >= 1
    assert ("huddle_scrape_source_up", frozenset({("source", "redis")})) not in worker_page
    # The task's log lines carry the id of the request that queued it.
    retry_lines = [line for line in worker.log().splitlines() if "delivery.retry" in line]
    assert retry_lines and all("trace-3f9a-emit" in line for line in retry_lines)


def test_dead_letters_and_breaker_states_are_read_at_scrape_time(delivery_settings):
    doc = deadletters.deadletter_build(
        delivery_id="dlv-m1",
        kind="webhook",
        target="http:example.test:80",
        payload={},
        attempts=[],
        created_at=None,
        last_error="HTTP 500",
    )
    deadletters.deadletter_write(doc=doc)
    for _ in range(int(delivery_settings["BREAKER_FAIL_MAX"])):
        breaker.breaker_record_failure(target="http:example.test:80")
    scrape = scrape_now()
    assert value(scrape, "huddle_dead_letters", status="dead") == 1
    target = "http:example.test:80"
    assert value(scrape, "huddle_breaker_state", target=target, state="open") == 1
    assert value(scrape, "huddle_breaker_state", target=target, state="closed") == 0
    assert value(scrape, "huddle_scrape_source_up", source="mongodb") == 1


def test_a_store_that_does_not_answer_never_fails_the_scrape(settings):
    settings.REDIS = RedisConfig(url="redis://127.0.0.1:9/0")  # nothing listens on the discard port
    settings.MONGODB_URI = "mongodb://127.0.0.1:9/"
    from videochat.mongo import _mongo

    _mongo.clear()
    try:
        scrape = scrape_now()
    finally:
        _mongo.clear()
    assert value(scrape, "huddle_scrape_source_up", source="redis") == 0
    assert value(scrape, "huddle_scrape_source_up", source="mongodb") == 0
    assert value(scrape, "huddle_scrape_source_up", source="scaling") == 0
    assert ("huddle_sockets_open", frozenset()) in scrape


@pytest.mark.django_db
def test_redis_and_database_errors_are_counted():
    import redis

    from videochat.storeerrors import CountedConnection

    before = scrape_now()
    dead = redis.Redis(
        connection_pool=redis.ConnectionPool(
            port=9, socket_connect_timeout=0.2, connection_class=CountedConnection
        )
    )
    with pytest.raises(redis.ConnectionError):
        dead.ping()
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    after = scrape_now()

    def grew(store: str) -> float:
        def total(scrape: dict) -> float:
            return sum(
                v
                for (name, labels), v in scrape.items()
                if name == "huddle_store_errors_total" and ("store", store) in labels
            )

        return total(after) - total(before)

    assert grew("redis") >= 1 and grew("database") == 1


# --- ids on log lines -----------------------------------------------------------


def _events(caplog, event: str) -> list[dict]:
    return [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == event
    ]


@pytest.mark.urls("tests.metrics_urls")
@pytest.mark.django_db
def test_every_request_logs_and_returns_a_request_id(client, caplog):
    caplog.set_level(logging.INFO)
    given = "edge-7f3a9c21-req"
    response = client.get("/probe/", headers={"X-Request-ID": given})
    assert response["X-Request-ID"] == given
    assert _events(caplog, "probe.seen")[-1]["request_id"] == given
    made = client.get("/probe/", headers={"X-Request-ID": "bad id\nwith newline"})
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])
    assert _events(caplog, "probe.seen")[-1]["request_id"] == made["X-Request-ID"]
    assert "request_id" not in structlog_context()


def structlog_context() -> dict:
    import structlog

    return structlog.contextvars.get_contextvars()


@pytest.mark.django_db(transaction=True)
async def test_socket_log_lines_carry_session_room_member_and_peer(room, owner, caplog):
    caplog.set_level(logging.INFO)
    async with joined(owner) as (comm, welcome):
        pass
    joined_line = _events(caplog, "room.joined")[-1]
    left_line = _events(caplog, "room.left")[-1]
    assert re.fullmatch(r"[0-9a-f]{16}", joined_line["session"])
    for line in (joined_line, left_line):
        assert line["session"] == joined_line["session"]
        assert line["room"] == room.slug and line["member"] == welcome["member"]["id"]
        assert line["peer"] == welcome["peer_id"]


def test_request_id_keeps_sane_ids_only():
    assert requestid.request_id_for("abcDEF-123_4.5:6") == "abcDEF-123_4.5:6"
    for bad in (None, "", "short", "x" * 129, "has space in it", "<script>alert</script>"):
        assert re.fullmatch(r"[0-9a-f]{32}", requestid.request_id_for(bad))


# --- names: docs and the Grafana dashboard ----------------------------------------


def exposed_names() -> set[str]:
    """Every sample name this project's /metrics can expose."""
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_count", "_sum"]}
    names = set()
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            names |= {obj._name + s for s in suffixes[obj._type]}
    names |= set(metricsview.STORE_METRICS)
    names |= {"huddle_node_capacity_sockets", *metricsview.SCALING_METRICS}
    return names


def test_operations_doc_lists_every_metric():
    doc = (BASE_DIR / "docs" / "operations.md").read_text()
    for name in exposed_names():
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f"`{base}`" in doc, name


def test_grafana_dashboard_queries_only_metrics_that_exist():
    dashboard = json.loads((BASE_DIR / "docs" / "grafana-huddle.json").read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(exprs) >= 10
    known = exposed_names()
    for expr in exprs:
        used = set(re.findall(r"\bhuddle_[a-z_]+\b", expr))
        assert used, expr
        assert used <= known, (expr, used - known)
    covered = {n for e in exprs for n in re.findall(r"\bhuddle_[a-z_]+\b", e)}
    for required in (
        "huddle_sockets_open",
        "huddle_frames_in_total",
        "huddle_frames_out_total",
        "huddle_chat_commit_seconds_bucket",
        "huddle_wakeup_gaps_repaired_total",
        "huddle_signals_total",
        "huddle_presence_peers",
        "huddle_deliveries_total",
        "huddle_dead_letters",
        "huddle_breaker_state",
        "huddle_store_errors_total",
    ):
        assert required in covered, required
