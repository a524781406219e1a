"""The sampler, the commands and /metrics/scaling against the real private Redis
and MongoDB-protocol server (nx-27017)."""

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from deliveries.connections import sync_redis
from scaling import jobs, samples, selectors, services


def sample_at(minute: datetime, *, node: str, sockets: float) -> dict:
    return {"node": node, "minute": minute, "sockets": sockets, "present": 0, "in_call": 0}


def test_sampler_writes_one_document_per_node_and_minute(deadletter_db, settings):
    settings.SCALING_SAMPLE_TTL_DAYS = 9
    # Near the real clock: the TTL monitor removes documents whose expire_at has passed.
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    now = minute + timedelta(seconds=42)
    services.load_sample_record(node="web-1", now=now)
    services.load_sample_record(node="web-1", now=now + timedelta(seconds=10))
    services.load_sample_record(node="web-2", now=now)
    col = samples.collection()
    stamp = minute.strftime("%Y%m%d%H%M")
    assert sorted(d["_id"] for d in col.find()) == [f"web-1:{stamp}", f"web-2:{stamp}"]
    doc = col.find_one({"_id": f"web-1:{stamp}"})
    # A real datetime (written by replace), so the TTL index and range queries work.
    assert doc["minute"] == minute
    assert doc["expire_at"] - doc["minute"] == timedelta(days=9)
    assert 0 <= doc["cpu"] <= 1
    ttl = [i for i in col.index_information().values() if "expireAfterSeconds" in i]
    assert ttl[0]["key"] == [("expire_at", 1)] and ttl[0]["expireAfterSeconds"] == 0


def test_sampler_reads_presence_deliveries_and_cpu_since_the_previous_minute(deadletter_db):
    r = sync_redis()
    peer = {"display_name": "x", "role": "member"}
    r.hset(
        "presence:7",
        mapping={
            "a": json.dumps({**peer, "in_call": True}),
            "b": json.dumps({**peer, "in_call": False}),
        },
    )
    r.hset("presence:8", "c", json.dumps({**peer, "in_call": True}))
    r.zadd("presence:7:seen", {"a": 1, "b": 1})
    r.hset("presence:7:chan", "a", "specific.x!y")
    t0 = datetime(2026, 11, 28, 10, 59, tzinfo=UTC)
    r.hset("dlv:stats:2026112810", mapping={"webhook:delivered": 100, "email:dead": 4})
    first = services.load_sample_record(node="web-1", now=t0)
    assert (first["present"], first["in_call"], first["rooms"]) == (3, 2, 2)
    # The hour rolls over between the samples: 60 more before it, 30 after.
    r.hincrby("dlv:stats:2026112810", "webhook:delivered", 50)
    r.hincrby("dlv:stats:2026112810", "email:failed_attempt", 10)
    r.hset("dlv:stats:2026112811", "webhook:delivered", 30)
    second = services.load_sample_record(node="web-1", now=t0 + timedelta(minutes=1))
    assert second["deliveries_per_s"] == pytest.approx(90 / 60, abs=1e-3)
    assert second["cpu_total_s"] > first["cpu_total_s"]


def test_sampler_counts_established_sockets_on_the_web_port(deadletter_db, settings):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        settings.WEB_PORT = server.getsockname()[1]
        clients = [socket.create_connection(server.getsockname()) for _ in range(3)]
        try:
            doc = services.load_sample_record(node="web-1", write=False)
        finally:
            for c in clients:
                c.close()
    assert doc["sockets"] == 3


def write_history(*, days: float, node: str, peak: float, end: datetime) -> None:
    """One sample per 5 minutes (the series averages per step): 500 at night, a
    morning ramp to ``peak`` at 09:00."""
    col = samples.collection()
    docs = []
    start = end - timedelta(days=days)
    for i in range(int(days * 288)):
        minute = start + timedelta(minutes=5 * i)
        h = minute.hour + minute.minute / 60
        load = 500 + (peak - 500) / (1 + np.exp(-(h - 8.5) / 0.5)) / (1 + np.exp((h - 18) / 0.8))
        doc = sample_at(minute, node=node, sockets=float(load))
        doc["_id"] = samples.sample_id(node=node, minute=minute)
        doc["expire_at"] = minute + timedelta(days=14)
        docs.append(doc)
    col.insert_many(docs)


def test_forecast_sums_nodes_recommends_for_the_coming_ramp_and_stores_it(deadletter_db, settings):
    settings.SCALING_NODE_CAPACITY_SOCKETS = 1000
    settings.SCALING_TARGET_UTILISATION = 0.5
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    for node in ("web-1", "web-2"):
        write_history(days=3, node=node, peak=3000, end=end)
    series, _ = selectors.load_series(
        metric="sockets", since=end - timedelta(days=4), until=end, step=5
    )
    assert len(series) == 3 * 288 and series.max() == pytest.approx(6000, rel=0.01)
    out = StringIO()
    call_command("scaling_forecast", "--horizon", "60", stdout=out)
    text = out.getvalue()
    assert "recommended nodes" in text and "stored" in text
    rec = selectors.recommendation_get()
    assert rec is not None and len(rec["steps"]) == 12
    truth = max(
        2 * (500 + 2500 / (1 + np.exp(-(h - 8.5) / 0.5)) / (1 + np.exp((h - 18) / 0.8)))
        for h in (
            (end + timedelta(minutes=m)).hour + (end + timedelta(minutes=m)).minute / 60
            for m in range(0, 60, 5)
        )
    )
    assert rec["peak_forecast"] == pytest.approx(truth, rel=0.05, abs=50)
    assert rec["recommended_nodes"] == max(1, int(np.ceil(rec["peak_forecast"] / 500 - 1e-9)))


def test_forecast_without_history_fails_with_a_message(deadletter_db):
    with pytest.raises(CommandError, match="not enough load history"):
        call_command("scaling_forecast")
    assert selectors.recommendation_get() is None


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("scaling_forecast", ["--horizon", "0"], "--horizon 0: give minutes between 5 and 1440"),
        ("scaling_forecast", ["--metric", "cpu"], "--metric 'cpu': one of sockets"),
        ("scaling_evaluate", ["--days", "3", "--train-days", "3"], "held-out day"),
        ("scaling_evaluate", ["--csv", "/nonexistent.csv"], "no such file"),
        ("scaling_sample", ["--node", "a:b"], "without ':'"),
    ],
)
def test_commands_refuse_bad_input(deadletter_db, command, args, message):
    with pytest.raises(CommandError, match=message):
        call_command(command, *args)


def test_a_bad_argument_exits_non_zero_with_the_message_on_stderr(deadletter_db):
    env = {**os.environ, "MONGODB_DB": deadletter_db}
    done = subprocess.run(
        [sys.executable, "manage.py", "scaling_evaluate", "--days", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "CommandError: --days 2 --peak 12000: give 3 to 90 days" in done.stderr


def test_evaluate_reports_forecast_error_and_lead(deadletter_db, tmp_path):
    out = StringIO()
    trace = tmp_path / "trace.csv"
    call_command(
        "scaling_evaluate",
        "--days",
        "5",
        "--train-days",
        "3",
        "--seed",
        "2",
        "--save-trace",
        str(trace),
        "--json",
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert report["held_out_days"] == 2 and report["forecast"]["mape_pct"] < 15
    assert report["lead_minutes"]["median"] > 0
    # The saved trace replays to the same numbers.
    again = StringIO()
    call_command(
        "scaling_evaluate", "--csv", str(trace), "--train-days", "3", "--json", stdout=again
    )
    assert json.loads(again.getvalue())["forecast"] == report["forecast"]


def test_sampling_job_samples_and_skips_the_forecast_until_two_days(deadletter_db, settings):
    settings.SCALING_FORECAST_EVERY_MIN = 1
    report = jobs.sample_load()
    assert report["forecast"].startswith("skipped: need at least 2 periods")
    assert samples.collection().count_documents({}) == 1


def test_cron_schedules_the_sampling_job_every_minute():
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=sync_redis())
    scheduler.load_config_from_file("deliveries.cron")
    found = [j for j in scheduler.get_jobs() if j.func_name == "scaling.jobs.sample_load"]
    assert len(found) == 1 and found[0].interval == 60


# --- /metrics/scaling ---------------------------------------------------------

METRICS = "/metrics/scaling"


@pytest.fixture
def recommendation():
    services.recommendation_store(
        recommendation={
            "recommended_nodes": 4,
            "peak_forecast": 2650.0,
            "computed_at": "2026-11-28T10:00:00+00:00",
        }
    )


@pytest.mark.urls("scaling.urls")
@pytest.mark.django_db
def test_metrics_refuse_anonymous_non_staff_and_a_wrong_token(
    client, django_user_model, settings, recommendation
):
    settings.METRICS_TOKEN = "s3cret-token"
    response = client.get(METRICS)
    assert response.status_code == 401 and "huddle_recommended_nodes" not in response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(METRICS, headers={"Authorization": "Bearer wrong"}).status_code == 403
    user = django_user_model.objects.create_user("marco", "m@example.com", "x")
    client.force_login(user)
    assert client.get(METRICS).status_code == 403


@pytest.mark.urls("scaling.urls")
@pytest.mark.django_db
def test_metrics_without_a_token_setting_refuse_any_bearer(client, settings, recommendation):
    settings.METRICS_TOKEN = ""
    assert client.get(METRICS, headers={"Authorization": "Bearer "}).status_code == 403


@pytest.mark.urls("scaling.urls")
@pytest.mark.django_db
def test_metrics_give_staff_and_the_token_the_gauge(
    client, django_user_model, settings, recommendation
):
    settings.METRICS_TOKEN = "s3cret-token"
    response = client.get(METRICS, headers={"Authorization": "Bearer s3cret-token"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "huddle_recommended_nodes 4.0" in response.text
    stamp = next(
        line.split()[1]
        for line in response.text.splitlines()
        if line.startswith("huddle_recommendation_timestamp_seconds ")
    )
    assert float(stamp) == datetime(2026, 11, 28, 10, tzinfo=UTC).timestamp()
    staff = django_user_model.objects.create_user("sam", "s@example.com", "x", is_staff=True)
    client.force_login(staff)
    assert "huddle_recommended_nodes 4.0" in client.get(METRICS).text


@pytest.mark.urls("scaling.urls")
@pytest.mark.django_db
def test_metrics_omit_the_gauge_before_any_forecast(admin_client):
    text = admin_client.get(METRICS).text
    assert "huddle_node_capacity_sockets" in text and "huddle_recommended_nodes" not in text


def test_evaluate_replays_the_recorded_samples(deadletter_db):
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    write_history(days=3.5, node="web-1", peak=3000, end=end)
    out = StringIO()
    call_command(
        "scaling_evaluate", "--from-samples", "4", "--train-days", "2", "--json", stdout=out
    )
    report = json.loads(out.getvalue())
    assert report["source"] == "load_samples, last 4 days"
    assert report["held_out_days"] == 1 and report["forecast"]["mape_pct"] < 5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SCALING_TARGET_UTILISATION", 1.5, "SCALING_TARGET_UTILISATION must be in"),
        ("SCALING_NODE_CAPACITY_SOCKETS", 0, "SCALING_NODE_CAPACITY_SOCKETS must be > 0"),
        ("SCALING_MIN_NODES", 30, "SCALING_MIN_NODES <= SCALING_MAX_NODES"),
        ("SCALING_SAMPLE_TTL_DAYS", 1, "SCALING_SAMPLE_TTL_DAYS must be >= 2"),
    ],
)
def test_bad_scaling_settings_stop_start_up(settings, name, value, message):
    from django.core.exceptions import ImproperlyConfigured

    from scaling.conf import settings_check

    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        settings_check()


@pytest.mark.django_db(transaction=True)  # django-rq enqueues on commit
def test_an_rq_worker_runs_the_sampling_job(delivery_settings):
    import django_rq
    from rq.job import Job

    from tests.fixtures.workers import rq_burst

    queue = django_rq.get_queue("default")
    job = queue.enqueue("scaling.jobs.sample_load")
    done = rq_burst(**delivery_settings)
    assert done.returncode == 0, done.stderr
    job = Job.fetch(job.id, connection=queue.connection)
    assert job.get_status() == "finished", job.latest_result()
    assert job.return_value()["node"] and samples.collection().count_documents({}) == 1
