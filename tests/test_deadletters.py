"""The MongoDB dead-letter repository, its spool, and the admin on top of it,
against the real MongoDB-protocol server (and a private one we stop)."""

import json
from datetime import timedelta

import pytest

from deliveries import deadletters, maintenance, pipeline, services
from deliveries.models import Webhook
from tests.fixtures.workers import wait_until

pytestmark = pytest.mark.django_db


def make_doc(delivery_id="d1", kind="webhook", target="http://hooks.example/a", n=3):
    attempts = [{"at": deadletters.now().isoformat(), "error": f"HTTP 503 #{i}"} for i in range(n)]
    return deadletters.deadletter_build(
        delivery_id=delivery_id,
        kind=kind,
        target=target,
        payload={"event": "message.posted", "data": {"i": 1}},
        attempts=attempts,
    )


def test_a_dead_letter_written_twice_is_one_document(deadletter_db, settings):
    settings.DEADLETTER_TTL_DAYS = 9
    doc = make_doc()
    deadletters.deadletter_write(doc=doc)
    deadletters.deadletter_write(doc=doc)
    assert deadletters.collection().count_documents({}) == 1
    stored = deadletters.deadletter_get(delivery_id="d1")
    assert stored["status"] == "dead" and stored["attempt_count"] == 3
    assert stored["last_error"] == "HTTP 503 #2"
    assert stored["attempts"][0]["at"].tzinfo is not None  # a real datetime, not a string
    assert stored["expire_at"] - stored["dead_at"] == timedelta(days=9)
    assert len(stored["history"]) == 1


def test_ttl_index_expires_each_document_at_its_expire_at(deadletter_db):
    deadletters.deadletter_write(doc=make_doc())
    indexes = deadletters.collection().index_information()
    ttl = [i for i in indexes.values() if "expireAfterSeconds" in i]
    assert len(ttl) == 1 and ttl[0]["key"] == [("expire_at", 1)]
    assert ttl[0]["expireAfterSeconds"] == 0


def test_replay_and_discard_happen_once_and_a_redead_letter_keeps_its_history(
    deadletter_db, monkeypatch
):
    from deliveries import enqueue

    enqueued = []
    monkeypatch.setattr(enqueue, "task_send", lambda name, **kw: enqueued.append(kw))
    deadletters.deadletter_write(doc=make_doc("d1"))
    deadletters.deadletter_write(doc=make_doc("d2"))
    assert services.deadletter_replay(delivery_id="d1", by="t")
    assert not services.deadletter_replay(delivery_id="d1", by="t")  # already replayed
    assert not services.deadletter_discard(delivery_id="d1", by="t")
    assert len(enqueued) == 1 and enqueued[0]["kwargs"]["delivery_id"] == "d1"
    assert services.deadletter_discard(delivery_id="d2", by="t")
    assert deadletters.deadletter_get(delivery_id="d2")["status"] == "discarded"
    # The replay got a fresh budget but kept the earlier attempts...
    status = pipeline.delivery_status(delivery_id="d1")
    assert status["status"] == "pending" and len(status["attempts"]) == 3
    # ...and when it dies again it is still one document, with all attempts.
    deadletters.deadletter_write(doc=make_doc("d1", n=5))
    doc = deadletters.deadletter_get(delivery_id="d1")
    assert doc["status"] == "dead" and doc["replays"] == 1 and doc["attempt_count"] == 5
    assert [h["action"] for h in doc["history"]] == ["dead", "replayed", "dead"]
    assert deadletters.collection().count_documents({}) == 2


def test_filters_and_search(deadletter_db):
    deadletters.deadletter_write(doc=make_doc("w1", target="http://a.example/x"))
    deadletters.deadletter_write(doc=make_doc("w2", target="http://b.example/y"))
    deadletters.deadletter_write(doc=make_doc("e1", kind="email", target="m@example.com"))

    def ids(**kw):
        docs, total = deadletters.deadletter_list(query=deadletters.deadletter_query(**kw))
        assert total == len(docs)
        return sorted(d["_id"] for d in docs)

    assert ids(kind="webhook") == ["w1", "w2"]
    assert ids(target="b.example") == ["w2"]
    assert ids(search="m@EXAMPLE") == ["e1"]
    assert ids(search="w1") == ["w1"]
    assert ids(status="discarded") == []
    assert ids(since=deadletters.now() - timedelta(minutes=1)) == ["e1", "w1", "w2"]
    assert ids(until=deadletters.now() - timedelta(minutes=1)) == []
    assert ids(search=".*") == []  # user text is escaped, not a regex


def test_mongodb_down_spools_then_flush_writes_it(deadletter_db, settings):
    from tests.fixtures.workers import free_port

    good_uri = settings.MONGODB_URI
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/"  # nothing listens
    assert deadletters.deadletter_record(doc=make_doc("s1")) == "spooled"
    assert deadletters.spool_length() == 1
    with pytest.raises(Exception):  # noqa: B017 - any PyMongoError: still down
        deadletters.spool_flush()
    assert deadletters.spool_length() == 1
    settings.MONGODB_URI = good_uri
    assert deadletters.spool_flush() == 1
    assert deadletters.spool_length() == 0
    assert deadletters.deadletter_get(delivery_id="s1")["attempt_count"] == 3


def test_letters_spooled_in_an_outage_share_one_flusher_and_do_not_wait_for_mongodb(
    deadletter_db, settings
):
    import time

    from tests.fixtures.workers import free_port

    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/"  # nothing listens
    assert deadletters.deadletter_record(doc=make_doc("s0")) == "spooled"
    started = time.monotonic()
    for i in range(1, 5):
        assert deadletters.deadletter_record(doc=make_doc(f"s{i}")) == "spooled"
    # Behind a spooled letter, a new one is spooled at once: no 2 s server
    # selection per letter while MongoDB is known to be down.
    assert time.monotonic() - started < 1.0
    assert deadletters.spool_length() == 5
    assert _flushers_queued() == 1


def test_only_the_flusher_holding_the_flag_drains_the_spool_and_then_frees_it(deadletter_db):
    from deliveries import tasks
    from deliveries.connections import sync_redis

    r = sync_redis()
    r.rpush(deadletters.SPOOL_KEY, json.dumps(make_doc("f1"), default=str))
    r.set(deadletters.FLUSHER_KEY, "theirs", px=60_000)
    assert tasks.deadletter_spool_flush.apply(kwargs={"token": "mine"}).get() == 0
    assert tasks.deadletter_spool_flush.apply().get() == 0  # queued by hand: flag taken
    assert deadletters.spool_length() == 1
    assert tasks.deadletter_spool_flush.apply(kwargs={"token": "theirs"}).get() == 1
    assert deadletters.spool_length() == 0
    assert deadletters.deadletter_get(delivery_id="f1")["status"] == "dead"
    assert not r.exists(deadletters.FLUSHER_KEY)  # the next spooled letter starts a new one


@pytest.mark.live
@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_dead_letter_due_while_mongodb_is_stopped_appears_after_it_returns(
    room, receiver, private_mongo, celery_worker, settings
):
    rec = receiver()
    rec.always_fail()
    Webhook.objects.create(room=room, url=rec.url, events=["call.started"])
    worker = celery_worker(MONGODB_URI=settings.MONGODB_URI)
    deadletters.collection()  # indexes exist before the outage
    assert services.room_event_emit(room_id=room.pk, event="call.started", data={}) == 1
    rec.wait_hits(1)
    private_mongo.stop()
    try:
        rec.wait_hits(settings.DELIVERY_MAX_ATTEMPTS)
        delivery_id = rec.hits[0].delivery_id
        # The letter is spooled first, then the delivery marked dead (never the
        # other way round: a worker killed in between would lose the letter).
        wait_until(
            lambda: (
                deadletters.spool_length() == 1
                and pipeline.delivery_status(delivery_id=delivery_id)["status"] == "dead"
            ),
            what="the spooled dead letter",
        )
        private_mongo.start()  # same port, same data
        doc = wait_until(
            lambda: deadletters.deadletter_get(delivery_id=delivery_id),
            timeout=45,
            what="the dead letter written after MongoDB returned",
        )
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.log()[-4000:]}") from exc
    assert doc["attempt_count"] == settings.DELIVERY_MAX_ATTEMPTS
    assert deadletters.spool_length() == 0
    assert deadletters.collection().count_documents({}) == 1


# --- the admin ---------------------------------------------------------------


def test_admin_bulk_discard_and_replay(admin_client, deadletter_db, monkeypatch):
    from deliveries import enqueue

    enqueued = []
    monkeypatch.setattr(enqueue, "task_send", lambda name, **kw: enqueued.append(kw))
    for i in range(3):
        deadletters.deadletter_write(doc=make_doc(f"bulk-{i}"))
    url = "/admin/deliveries/deadletter/"
    page = admin_client.get(url, {"q": "bulk-", "date": "1d"})
    assert page.status_code == 200
    assert all(f"bulk-{i}" in page.content.decode() for i in range(3))
    response = admin_client.post(url, {"action": "discard", "ids": ["bulk-0", "bulk-1"]})
    assert response.status_code == 302
    response = admin_client.post(url, {"action": "replay", "ids": ["bulk-1", "bulk-2"]})
    statuses = {d["_id"]: d["status"] for d in deadletters.collection().find({}, {"status": 1})}
    assert statuses == {"bulk-0": "discarded", "bulk-1": "discarded", "bulk-2": "replayed"}
    assert [e["kwargs"]["delivery_id"] for e in enqueued] == ["bulk-2"]
    # Ids with a hyphen: a bare "b2" also turned up inside the page's CSRF token.
    discarded = admin_client.get(url, {"status": "discarded"}).content.decode()
    assert "bulk-0" in discarded and "bulk-2" not in discarded
    assert "Dead letters" in admin_client.get("/admin/").content.decode()


def test_admin_dead_letter_page_out_of_range_is_a_400(admin_client, deadletter_db):
    deadletters.deadletter_write(doc=make_doc("only"))
    url = "/admin/deliveries/deadletter/"
    assert admin_client.get(url, {"p": "1"}).status_code == 200
    for page in ("2", "0", "-3", "x", str(10**30)):
        assert admin_client.get(url, {"p": page}).status_code == 400, page
    # An empty list still has its first page.
    assert admin_client.get(url, {"p": "1", "kind": "email"}).status_code == 200


def test_admin_dead_letters_need_permissions(client, django_user_model, deadletter_db):
    from django.contrib.auth.models import Permission

    deadletters.deadletter_write(doc=make_doc("p1"))
    staff = django_user_model.objects.create_user("sam", "sam@example.com", "x", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/deliveries/deadletter/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    assert client.get("/admin/deliveries/deadletter/p1/").status_code == 200
    assert client.post("/admin/deliveries/deadletter/p1/", {"action": "discard"}).status_code == 403
    assert deadletters.deadletter_get(delivery_id="p1")["status"] == "dead"
    member = django_user_model.objects.create_user("nina", "nina@example.com", "x")
    client.force_login(member)
    assert client.get("/admin/deliveries/deadletter/").status_code == 302  # to the login


def test_webhook_admin_shows_breaker_state(admin_client, room, settings):
    from deliveries import breaker

    settings.BREAKER_FAIL_MAX = 1
    hook = Webhook.objects.create(room=room, url="https://93.184.215.14/h", events=["call.ended"])
    breaker.breaker_record_failure(target="http:93.184.215.14:443")
    page = admin_client.get("/admin/deliveries/webhook/").content.decode()
    assert "open (1 failures, 1 trips)" in page
    admin_client.post(
        "/admin/deliveries/webhook/",
        {"action": "reset_breakers", "_selected_action": [hook.pk]},
    )
    assert "closed (0 failures" in admin_client.get("/admin/deliveries/webhook/").content.decode()


def _flushers_queued() -> int:
    """Spool flusher tasks in the broker: in the queue, or taken by a worker
    and not yet acknowledged (waiting for their countdown)."""
    from deliveries.connections import sync_redis

    r = sync_redis()
    count = 0
    for raw in [*r.lrange("celery", 0, -1), *r.hvals("unacked")]:
        message = json.loads(raw)
        if isinstance(message, list):  # unacked: [message, exchange, routing key]
            message = message[0]
        if message.get("headers", {}).get("task") == "deliveries.deadletter_spool_flush":
            count += 1
    return count


@pytest.mark.live
@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_mongodb_outage_has_one_flusher_and_healthy_deliveries_keep_their_latency(
    room, receiver, private_mongo, celery_worker, settings
):
    import re
    import statistics
    import time

    healthy = receiver()
    failing = receiver()
    failing.always_fail()
    Webhook.objects.create(room=room, url=healthy.url, events=["message.posted"])
    Webhook.objects.create(room=room, url=failing.url, events=["call.started"])
    worker = celery_worker(MONGODB_URI=settings.MONGODB_URI, DELIVERY_MAX_ATTEMPTS="2")
    deadletters.collection()  # indexes exist before the outage

    def healthy_latency_s() -> float:
        seen = len(healthy.hits)
        sent = time.time()
        services.room_event_emit(room_id=room.pk, event="message.posted", data={})
        return healthy.wait_hits(seen + 1)[seen].at - sent

    def flush_failures() -> int:
        return worker.log().count("deadletter.spool_flush_failed")

    baseline = [healthy_latency_s() for _ in range(10)]
    private_mongo.stop()
    try:
        for _ in range(20):
            services.room_event_emit(room_id=room.pk, event="call.started", data={})
        wait_until(lambda: deadletters.spool_length() == 20, timeout=60, what="20 spooled")
        # Measure while the flusher demonstrably keeps failing against the outage.
        failures_before = flush_failures()
        during: list[float] = []
        queued: list[int] = []
        for more in range(1, 4):
            for _ in range(5):
                during.append(healthy_latency_s())
                queued.append(_flushers_queued())
            wait_until(
                lambda more=more: flush_failures() >= failures_before + more,
                timeout=30,
                what="the flusher to try again",
            )
        wait_until(lambda: _flushers_queued() == 1, timeout=10, what="one flusher queued")
        assert maintenance.delivery_health(hours=1)["spool_flusher"] is True
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.log()[-4000:]}") from exc
    assert max(queued) <= 1, queued
    # A retry keeps its task id: one id is one flusher, however often it tried.
    flushers = set(re.findall(r"deliveries\.deadletter_spool_flush\[([0-9a-f-]+)\]", worker.log()))
    assert len(flushers) == 1, flushers
    usual, worst = statistics.median(baseline), max(baseline)
    # Generous for a busy 2-core machine; the bug made it seconds.
    assert statistics.median(during) <= max(5 * usual, usual + 0.3), (baseline, during)
    assert max(during) <= worst + 1.0, (baseline, during)

    private_mongo.start()
    wait_until(
        lambda: deadletters.spool_length() == 0 and _flushers_queued() == 0,
        timeout=45,
        what="the spool drained",
    )
    assert deadletters.collection().count_documents({"status": "dead"}) == 20
    assert not deadletters.sync_redis().exists(deadletters.FLUSHER_KEY)
