"""One attempt at a time, in this process (real Redis, HTTP receiver, MongoDB):
what is retried, what is dead-lettered at once, and what runs only once."""

import time

import pytest

from deliveries import breaker, deadletters, pipeline, services
from deliveries.connections import sync_redis
from deliveries.models import Webhook
from tests.fixtures.workers import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook_for(room, delivery_settings):
    def make(url, **extra):
        return Webhook.objects.create(room=room, url=url, events=["message.posted"], **extra)

    return make


def attempt(hook, delivery_id="dlv1"):
    return pipeline.delivery_attempt(
        delivery_id=delivery_id,
        kind="webhook",
        target=hook.url,
        payload={
            "webhook_id": hook.pk,
            "room_id": hook.room_id,
            "event": "message.posted",
            "data": {},
            "created_at": "2026-11-26T00:00:00+00:00",
        },
    )


def test_a_4xx_is_dead_lettered_at_once_and_does_not_trip_the_breaker(receiver, hook_for):
    rec = receiver(fail_times=1, fail_status=410)
    hook = hook_for(rec.url)
    assert attempt(hook)["status"] == "dead"
    assert len(rec.hits) == 1
    doc = deadletters.deadletter_get(delivery_id="dlv1")
    assert doc["attempt_count"] == 1 and doc["last_error"] == "HTTP 410"
    assert doc["attempts"][0]["status_code"] == 410
    info = breaker.breaker_info(target=f"http:127.0.0.1:{rec.port}")
    assert info["state"] == "closed" and info["failures"] == 0


def test_a_5xx_is_retried_with_growing_delays_then_dead_lettered(receiver, hook_for, settings):
    rec = receiver()
    rec.always_fail()
    hook = hook_for(rec.url)
    countdowns = []
    for _ in range(settings.DELIVERY_MAX_ATTEMPTS - 1):
        outcome = attempt(hook)
        assert outcome["status"] == "retry"
        countdowns.append(outcome["countdown"])
    assert attempt(hook)["status"] == "dead"
    base, jitter = settings.DELIVERY_RETRY_BASE_S, settings.DELIVERY_RETRY_JITTER
    for n, countdown in enumerate(countdowns, start=1):
        delay = min(settings.DELIVERY_RETRY_MAX_S, base * 2 ** (n - 1))
        assert delay * (1 - jitter) <= countdown <= delay
    assert len(rec.hits) == settings.DELIVERY_MAX_ATTEMPTS
    # Dead is final: another run (a redelivered message) does nothing.
    assert attempt(hook)["status"] == "done_before"
    assert len(rec.hits) == settings.DELIVERY_MAX_ATTEMPTS


def test_a_delivered_delivery_is_never_sent_again(receiver, hook_for):
    rec = receiver()
    hook = hook_for(rec.url)
    assert attempt(hook)["status"] == "delivered"
    assert attempt(hook)["status"] == "done_before"
    assert rec.delivered_ids() == ["dlv1"]


def test_a_delivery_another_worker_holds_is_not_run_twice(receiver, hook_for):
    rec = receiver()
    hook = hook_for(rec.url)
    sync_redis().set("dlv:dlv1:lock", "someone-else", px=5000)
    outcome = attempt(hook)
    assert outcome["status"] == "busy" and outcome["countdown"] > 0
    assert rec.hits == []


def test_paused_webhook_and_private_address_are_not_called(receiver, hook_for, settings):
    rec = receiver()
    paused = hook_for(rec.url, active=False)
    assert attempt(paused, "p1")["status"] == "dead"
    assert "deactivated" in deadletters.deadletter_get(delivery_id="p1")["last_error"]
    settings.WEBHOOK_ALLOW_PRIVATE = False  # the URL was allowed once, not any more
    hook = hook_for(rec.url)
    assert attempt(hook, "p2")["status"] == "dead"
    assert "private" in deadletters.deadletter_get(delivery_id="p2")["last_error"]
    assert rec.hits == []


def test_open_breaker_refusals_keep_the_budget_and_wake_spread_out(receiver, hook_for, settings):
    settings.BREAKER_FAIL_MAX = 1
    settings.BREAKER_COOLDOWN_S = 30
    rec = receiver()
    hook = hook_for(rec.url)
    breaker.breaker_record_failure(target=f"http:127.0.0.1:{rec.port}")
    refusals = settings.DELIVERY_MAX_ATTEMPTS + 1  # more than the whole budget
    outcomes = [attempt(hook, f"w{i}") for i in range(20) for _ in range(refusals)]
    assert {o["status"] for o in outcomes} == {"waiting"}
    countdowns = sorted(o["countdown"] for o in outcomes)
    assert countdowns[0] > 25  # waits out the cool-down...
    assert countdowns[-1] - countdowns[0] > 30 / 4  # ...and wakes spread over the next one
    assert countdowns[-1] <= 2 * 30
    assert rec.hits == []
    for i in range(20):
        status = pipeline.delivery_status(delivery_id=f"w{i}")
        assert status["status"] == "pending" and status["attempts"] == []
        assert status["state"]["run_attempts"] == "0"
        assert status["state"]["breaker_refusals"] == str(refusals)
    assert deadletters.collection().count_documents({}) == 0


def test_a_delivery_gives_up_on_an_open_breaker_after_the_wait_deadline(
    receiver, hook_for, settings
):
    settings.BREAKER_FAIL_MAX = 1
    settings.BREAKER_COOLDOWN_S = 30
    settings.DELIVERY_BREAKER_WAIT_MAX_S = 0.5
    rec = receiver()
    hook = hook_for(rec.url)
    breaker.breaker_record_failure(target=f"http:127.0.0.1:{rec.port}")
    started = time.monotonic()
    wait_until(lambda: attempt(hook)["status"] == "dead", timeout=5, what="giving up")
    assert time.monotonic() - started >= 0.5 - 0.05  # measured in time...
    state = pipeline.delivery_status(delivery_id="dlv1")["state"]
    assert int(state["breaker_refusals"]) > settings.DELIVERY_MAX_ATTEMPTS  # ...not in refusals
    doc = deadletters.deadletter_get(delivery_id="dlv1")
    assert doc["attempt_count"] == 0 and doc["attempts"] == []
    assert doc["last_error"].startswith(f"circuit open for http:127.0.0.1:{rec.port}: waited")
    assert rec.hits == []


def test_a_call_restarts_the_breaker_wait_clock(receiver, hook_for, settings):
    settings.BREAKER_FAIL_MAX = 1
    settings.BREAKER_COOLDOWN_S = 30
    rec = receiver(fail_times=1)
    hook = hook_for(rec.url)
    target = f"http:127.0.0.1:{rec.port}"
    breaker.breaker_record_failure(target=target)
    assert attempt(hook)["status"] == "waiting"
    assert "breaker_wait_since" in pipeline.delivery_status(delivery_id="dlv1")["state"]
    breaker.breaker_reset(target=target)
    assert attempt(hook)["status"] == "retry"  # called: the receiver failed it
    state = pipeline.delivery_status(delivery_id="dlv1")["state"]
    assert "breaker_wait_since" not in state and state["run_attempts"] == "1"


def test_notify_offline_members_skips_guests_and_people_without_email(
    room, member, member_user, invite, monkeypatch, django_capture_on_commit_callbacks
):
    from rooms import services as room_services

    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda **kw: sent.append(kw))
    guest = room_services.membership_join_as_guest(invite=invite, display_name="Gus")
    member_user.email = ""
    member_user.save()
    owner_membership = room.memberships.get(user=room.owner)
    with django_capture_on_commit_callbacks(execute=True):
        n = services.notify_offline_members(
            room_id=room.pk,
            member_ids=[owner_membership.pk, member.pk, guest.pk],
            reason="Invited",
            text="hi",
        )
    assert n == 1
    assert [s["target"] for s in sent] == [room.owner.email]
    assert sent[0]["kind"] == "email" and sent[0]["payload"]["member_id"] == owner_membership.pk


@pytest.mark.django_db(transaction=True)
def test_broker_down_after_commit_is_logged_not_raised_to_the_caller(room, monkeypatch, caplog):
    from deliveries import enqueue

    def down(name, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(enqueue, "task_send", down)
    Webhook.objects.create(room=room, url="https://93.184.215.14/a", events=["call.ended"])
    with caplog.at_level("ERROR"):
        n = services.room_event_emit(room_id=room.pk, event="call.ended", data={"x": 1})
    assert n == 1  # the caller's committed write stands
    logged = caplog.text
    assert "delivery.enqueue_failed" in logged and "https://93.184.215.14/a" in logged


def test_the_tasks_queued_by_name_are_the_ones_a_worker_registers():
    from deliveries import enqueue
    from videochat.celery import app

    app.loader.import_default_modules()  # what a worker does at start (autodiscover)
    assert {enqueue.DELIVER, enqueue.DEADLETTER_SPOOL_FLUSH} <= set(app.tasks)
