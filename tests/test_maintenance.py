"""Maintenance: each command with and without --dry-run, the same work as rq
jobs run by a real rq worker, the rq cron schedule, and the visibility-timeout
system check."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries import breaker, deadletters
from deliveries.connections import sync_redis
from tests.fixtures.live import run_manage
from tests.fixtures.workers import rq_burst

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def old_dead_letter(delivery_id: str, days: int) -> None:
    doc = deadletters.deadletter_build(
        delivery_id=delivery_id,
        kind="webhook",
        target="http://hooks.example/x",
        payload={"event": "call.ended", "data": {}},
        attempts=[{"at": deadletters.now().isoformat(), "error": "HTTP 500"}],
    )
    doc["dead_at"] = deadletters.now() - timedelta(days=days)
    deadletters.deadletter_write(doc=doc)


def old_message(room, member, seq: int, days: int):
    from messaging.models import Message

    return Message.objects.create(
        room=room,
        seq=seq,
        author=member,
        client_id=f"c{seq}",
        body="hello",
        created_at=timezone.now() - timedelta(days=days),
    )


@pytest.fixture
def retention(delivery_settings, settings):
    settings.DEADLETTER_TTL_DAYS = 10
    settings.CHAT_RETENTION_DAYS = 20
    return {**delivery_settings, "DEADLETTER_TTL_DAYS": "10", "CHAT_RETENTION_DAYS": "20"}


def test_prune_command_dry_run_changes_nothing_then_prunes(room, member, retention):
    from messaging.models import Message

    old_dead_letter("old", days=11)
    old_dead_letter("new", days=1)
    old_message(room, member, 1, days=30)
    old_message(room, member, 2, days=2)

    dry = run_manage("deliveries_prune", "--dry-run", **retention)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["dry_run"], report["deadletters"], report["messages"]) == (True, 1, 1)
    assert deadletters.collection().count_documents({}) == 2
    assert Message.objects.count() == 2

    real = run_manage("deliveries_prune", **retention)
    assert real.returncode == 0, real.stderr
    report = json.loads(real.stdout)
    assert report["deadletters"] == 1 and report["messages"] == 1 and not report["dry_run"]
    assert [d["_id"] for d in deadletters.collection().find({})] == ["new"]
    assert list(Message.objects.values_list("seq", flat=True)) == [2]


def _stale_peer(room_id: int, peer_id: str, age_s: float) -> None:
    r = sync_redis()
    secs, micros = r.time()
    state = {
        "peer_id": peer_id,
        "member_id": 1,
        "display_name": peer_id,
        "role": "participant",
        "audio": True,
        "video": True,
        "screen": False,
        "in_call": True,
    }
    r.hset(f"presence:{room_id}", peer_id, json.dumps(state))
    r.zadd(f"presence:{room_id}:seen", {peer_id: secs + micros / 1e6 - age_s})


def test_presence_expire_command_removes_only_stale_peers(room, delivery_settings):
    _stale_peer(room.pk, "gone", age_s=120)
    _stale_peer(room.pk, "here", age_s=1)
    dry = run_manage("presence_expire", "--dry-run", **delivery_settings)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["would_expire"] == {str(room.pk): ["gone"]}
    assert sync_redis().hlen(f"presence:{room.pk}") == 2
    real = run_manage("presence_expire", **delivery_settings)
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["expired"] == {str(room.pk): ["gone"]}
    assert sync_redis().hkeys(f"presence:{room.pk}") == ["here"]


def test_presence_expiry_tells_the_room_webhooks_like_any_leave(room, monkeypatch):
    from deliveries import maintenance
    from deliveries import services as deliveries
    from deliveries.models import Webhook

    Webhook.objects.create(
        room=room, url="https://93.184.215.14/h", events=["participant.left", "call.ended"]
    )
    sent: list[dict] = []
    monkeypatch.setattr(deliveries, "_enqueue", lambda **kw: sent.append(kw["payload"]))
    _stale_peer(room.pk, "gone", age_s=120)
    assert maintenance.presence_expire()["expired"] == {str(room.pk): ["gone"]}
    assert [(p["event"], p["data"].get("reason")) for p in sent] == [
        ("participant.left", "timeout"),
        ("call.ended", "timeout"),
    ]


def test_health_command_reports_breakers_and_spool(delivery_settings, settings):
    settings.BREAKER_FAIL_MAX = 1
    ok = run_manage("deliveries_health", "--strict", **delivery_settings)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["healthy"] is True
    breaker.breaker_record_failure(target="http:down.example:443")
    bad = run_manage("deliveries_health", "--strict", "--dry-run", **delivery_settings)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["healthy"] is False
    assert report["breakers"][0]["target"] == "http:down.example:443"
    assert report["breakers"][0]["state"] == "open"
    assert report["deadletters"] == {"dead": 0, "replayed": 0, "discarded": 0}
    assert report["spool_flusher"] is False
    # A spooled letter with nobody flushing it: --flush-spool starts the one flusher.
    sync_redis().rpush(deadletters.SPOOL_KEY, "{}")
    started = run_manage("deliveries_health", "--flush-spool", **delivery_settings)
    report = json.loads(started.stdout)
    assert report["spool"] == {"dry_run": False, "spooled": 1, "flusher": "started"}
    assert report["spool_flusher"] is True
    again = run_manage("deliveries_health", "--flush-spool", **delivery_settings)
    assert json.loads(again.stdout)["spool"]["flusher"] == "running"


def test_maintenance_runs_as_rq_jobs_and_shows_in_the_dashboard(
    room, member, retention, admin_client
):
    import django_rq
    from rq.job import Job

    from deliveries import jobs

    old_dead_letter("old", days=11)
    old_message(room, member, 1, days=30)
    _stale_peer(room.pk, "gone", age_s=120)
    queue = django_rq.get_queue("default")
    dry = queue.enqueue(jobs.prune_retention, dry_run=True)
    prune = queue.enqueue(jobs.prune_retention, depends_on=dry)
    presence = queue.enqueue(jobs.expire_presence)
    health = queue.enqueue(jobs.delivery_health)
    replay = queue.enqueue(jobs.replay_deadletters, kind="webhook", dry_run=True, depends_on=prune)
    spool = queue.enqueue(jobs.flush_deadletter_spool)
    done = rq_burst(**retention)
    assert done.returncode == 0, done.stderr
    results = {
        name: Job.fetch(job.id, connection=queue.connection)
        for name, job in {
            "dry": dry,
            "prune": prune,
            "presence": presence,
            "health": health,
            "replay": replay,
            "spool": spool,
        }.items()
    }
    for name, job in results.items():
        assert job.get_status() == "finished", (name, job.get_status(), done.stderr[-2000:])
    assert results["dry"].return_value()["deadletters"] == 1
    assert results["prune"].return_value()["messages"] == 1
    assert results["presence"].return_value()["expired"] == {str(room.pk): ["gone"]}
    assert "counts" in results["health"].return_value()
    assert results["replay"].return_value()["matched"] == 0  # "old" was pruned first
    assert results["spool"].return_value() == {"dry_run": False, "spooled": 0, "flusher": "idle"}
    # django-rq's admin dashboard lists them.
    assert admin_client.get("/admin/rq/").status_code == 200
    finished = admin_client.get("/admin/rq/queues/0/finished/").content.decode()
    assert prune.id in finished and health.id in finished


def test_cron_module_schedules_every_maintenance_job():
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=sync_redis())
    scheduler.load_config_from_file("deliveries.cron")
    names = sorted(job.func.__name__ for job in scheduler.get_jobs())
    assert names == [
        "delivery_health",
        "expire_presence",
        "flush_deadletter_spool",
        "prune_retention",
        "replay_deadletters",
        "sample_load",
    ]


def test_visibility_timeout_must_exceed_the_longest_retry_delay(settings):
    from deliveries.checks import visibility_timeout_check

    assert visibility_timeout_check(None) == []
    settings.DELIVERY_RETRY_MAX_S = 600
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
    errors = visibility_timeout_check(None)
    assert [e.id for e in errors] == ["deliveries.E001"]


def test_rqcron_enqueues_the_schedule_and_a_worker_runs_it(delivery_settings):
    import subprocess
    import sys

    import django_rq
    from rq.job import Job

    from tests.fixtures.live import django_env
    from tests.fixtures.workers import wait_until
    from videochat.devstack import BASE_DIR

    queue = django_rq.get_queue("default")
    cron = subprocess.Popen(
        [sys.executable, "manage.py", "rqcron", "deliveries.cron"],
        cwd=BASE_DIR,
        env=django_env(**delivery_settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Interval jobs are enqueued as soon as the scheduler starts.
        ids = wait_until(lambda: len(queue.job_ids) >= 3 and queue.job_ids, timeout=30)
    finally:
        cron.terminate()
        cron.wait(10)
    names = sorted(Job.fetch(i, connection=queue.connection).func_name for i in ids)
    assert names == [
        "deliveries.jobs.expire_presence",
        "deliveries.jobs.flush_deadletter_spool",
        "scaling.jobs.sample_load",
    ]
    done = rq_burst(**delivery_settings)
    assert done.returncode == 0, done.stderr
    for job_id in ids:
        assert Job.fetch(job_id, connection=queue.connection).get_status() == "finished"
