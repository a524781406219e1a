"""A Celery worker whose broker's primary dies (Redis Sentinel, SIGKILL) while it
runs an acks_late task and holds another (a countdown): the worker must stay up,
finish the task, run the held one within seconds of the failover (not after the
hour-long visibility timeout), run each once, and take new work from the new primary.

In tests/test_sentinel.py kombu 5.7's Sentinel transport exited the worker after
such a failover ("Unrecoverable error: AttributeError: 'NoneType' object has no
attribute 'hostname'": a channel holding unacknowledged tasks closed after kombu had
forgotten the connection's settings); the second test puts a channel in that state
(videochat/kombusentinel.py turns it into a connection error kombu ignores).
"""

import subprocess
import time
import uuid

import pytest
import redis
from kombu import Connection, Exchange, Queue

from tests.fixtures.live import django_env, run_dir
from tests.fixtures.workers import wait_until
from videochat.celery import app
from videochat.devstack import (
    BASE_DIR,
    Service,
    celery_worker_argv,
    scaled,
)

pytestmark = [pytest.mark.live, pytest.mark.fault]

# From the promotion to the held task's mark: its countdown's rest, the worker's
# reconnect (Celery's retry backoff) and at most one unacked sweep tick.
HELD_DEADLINE_S = 45


def _log(service: Service) -> str:
    path = service.log_path
    return path.read_text(errors="replace") if path and path.exists() else ""


def _slowtask_worker(env: dict) -> Service:
    """A one-process Celery worker of tests.fixtures.slowtask on ``env``'s broker."""
    name = f"w{uuid.uuid4().hex[:6]}"
    return Service(
        "celery",
        None,
        [
            *celery_worker_argv(concurrency=1, loglevel="INFO", name=name),
            "-I",
            "tests.fixtures.slowtask",
        ],
        run_dir() / f"celery-{name}.log",
        env=env,
        cwd=BASE_DIR,
    )


def test_a_worker_running_a_late_ack_task_survives_the_brokers_failover(redis_group):
    env = django_env(**redis_group.env, REDIS_URL="")
    worker = _slowtask_worker(env)
    try:
        worker.start()
        wait_until(lambda: " ready." in _log(worker), timeout=30, what="the worker")

        def mark(key: str) -> bytes | None:
            return redis.Redis(port=redis_group.primary_port(), socket_timeout=2).get(key)

        def call(key: str, seconds: float, *options: str) -> None:
            subprocess.run(
                [
                    str(BASE_DIR / ".venv/bin/celery"),
                    "-A",
                    "videochat",
                    "call",
                    "tests.slow",
                    "--kwargs",
                    f'{{"seconds": {seconds}, "mark": "{key}"}}',
                    *options,
                ],
                env=env,
                cwd=BASE_DIR,
                check=True,
                capture_output=True,
                timeout=scaled(30),
            )

        # One task running, unacknowledged until it ends (acks_late); one held by
        # the worker, unacknowledged, until its countdown runs out. Both sent at once
        # from here: a `celery call` process each took about 9 s to start on a loaded
        # machine, and the countdown had run out before the second was sent.
        url = ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in redis_group.sentinels)
        options = {"master_name": redis_group.master}
        with app.connection_for_write(url, transport_options=options) as connection:
            slow = "tests.slow"
            app.send_task(
                slow, kwargs={"seconds": 0, "mark": "held"}, countdown=8, connection=connection
            )
            app.send_task(slow, kwargs={"seconds": 5, "mark": "first"}, connection=connection)
        wait_until(lambda: _log(worker).count(" received") >= 2, timeout=20, what="both tasks")
        # Both unacknowledged entries (kombu's "unacked" hash) are on the replica:
        # what the primary had not yet replicated dies with it (asynchronous
        # replication), which is not what this test is about.
        replica = redis.Redis(port=redis_group.replica.port, socket_timeout=2)
        wait_until(lambda: replica.hlen("unacked") == 2, timeout=10, what="the replication")
        log = _log(worker)
        assert "succeeded" not in log and mark("held") is None, f"no task held: {log[-2000:]}"
        redis_group.primary.kill()
        wait_until(
            lambda: redis_group.primary_port() == redis_group.replica.port,
            timeout=20,
            what="the promotion",
        )
        promoted = time.monotonic()
        # The task ends after the failover and is acknowledged (or the worker dies trying).
        wait_until(
            lambda: "succeeded" in _log(worker) or worker.proc.poll() is not None,
            timeout=60,
            what="the task to end",
        )
        # The held task's message was unacknowledged on the dead primary; the worker
        # restores it through its new connection and runs it at its eta, seconds
        # after the failover, where kombu alone left it to the unacked sweep after
        # CELERY_VISIBILITY_TIMEOUT (an hour; the worker's own restore had failed).
        try:
            wait_until(
                lambda: mark("held") or worker.proc.poll() is not None,
                timeout=HELD_DEADLINE_S,
                what="the held task",
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; the worker's log:\n{_log(worker)[-4000:]}") from exc
        held_after = time.monotonic() - promoted
        call("second", 0)  # taken from the new primary by the same worker
        wait_until(lambda: mark("second") or worker.proc.poll() is not None, timeout=60)
        log = _log(worker)
        assert worker.proc.poll() is None and "Unrecoverable error" not in log, log[-4000:]
        assert mark("second") == b"done"
        assert mark("held") == b"done", log[-4000:]
        print(f"held task ran {held_after:.1f} s after the promotion")
        # Once each: the restored message is not run beside the countdown timer
        # Celery dropped at the connection loss, and the task running at the kill
        # is settled by its ack, not restored and run again.
        assert (mark("held:runs"), mark("first:runs")) == (b"1", b"1"), log[-4000:]
    finally:
        worker.stop()


def test_a_retry_published_while_the_broker_has_no_primary_is_not_dropped(redis_group):
    """A task retrying (as deliveries.deliver does, videochat.celery.task_retry) right
    after the primary died: its new message waits for the promotion. With Celery's
    default publish retry (about 0.6 s) the publish failed and the task was rejected
    without requeue: gone."""
    env = django_env(**redis_group.env, REDIS_URL="")
    worker = _slowtask_worker(env)
    try:
        worker.start()
        wait_until(lambda: " ready." in _log(worker), timeout=30, what="the worker")
        subprocess.run(
            [
                str(BASE_DIR / ".venv/bin/celery"),
                "-A",
                "videochat",
                "call",
                "tests.retry_once",
                "--kwargs",
                '{"seconds": 4, "mark": "retried"}',
            ],
            env=env,
            cwd=BASE_DIR,
            check=True,
            capture_output=True,
            timeout=scaled(30),
        )
        wait_until(lambda: "Task tests.retry_once" in _log(worker), timeout=20, what="the task")
        redis_group.primary.kill()  # the task retries 4 s after it started: no primary yet
        # The premise: the kill came before the retry was published (Celery logs
        # "Task tests.retry_once[...] retry: Retry in 1s" when it is).
        assert " retry: " not in _log(worker), "the retry was published before the kill"

        def mark(key: str) -> bytes | None:
            return redis.Redis(port=redis_group.primary_port(), socket_timeout=2).get(key)

        wait_until(
            lambda: redis_group.primary_port() == redis_group.replica.port,
            timeout=20,
            what="the promotion",
        )
        wait_until(
            lambda: mark("retried") or worker.proc.poll() is not None,
            timeout=HELD_DEADLINE_S,
            what="the retry",
        )
        log = _log(worker)
        assert worker.proc.poll() is None and "Unrecoverable error" not in log, log[-4000:]
        assert " retry: " in log, log[-4000:]  # it did go through a retry
        assert mark("retried:runs") == b"1", log[-4000:]
    finally:
        worker.stop()


def test_the_app_uses_the_patched_sentinel_transport_with_sentinels(redis_group, settings):
    assert settings.CELERY_BROKER_TRANSPORT is None  # the suite's plain Redis
    url = ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in redis_group.sentinels)
    # Also after kombu's failover moved the connection to another Sentinel's URL
    # (Connection.switch takes the transport from the URL's scheme).
    code = (
        "from videochat.celery import app; "
        "c = app.connection_for_write(); "
        "print(type(c.transport).__module__); "
        "c.switch(c.alt[-1]); "
        "print(type(c.transport).__module__)"
    )
    env = django_env(**redis_group.env, REDIS_URL="")
    out = subprocess.run(
        [str(BASE_DIR / ".venv/bin/python"), "-c", code],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(60),
    ).stdout
    assert out.split() == ["videochat.kombusentinel"] * 2, (out, url)


@pytest.mark.parametrize(
    ("transport", "survives"),
    [
        ("kombu.transport.redis:SentinelTransport", False),
        ("videochat.kombusentinel:Transport", True),
    ],
)
def test_closing_a_channel_with_unacked_tasks_after_its_connection_forgot_its_settings(
    redis_group, transport, survives
):
    """The state the worker died in: the primary dead, the transport's client gone
    (what kombu's Connection close does), a channel still holding an unacknowledged
    message. kombu's own transport raises AttributeError, which Celery treats
    as fatal; the app's raises a connection error, which the close ignores."""
    url = ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in redis_group.sentinels)
    options = {"master_name": redis_group.master}
    queue = Queue("t", Exchange("t"), "t")
    with Connection(url, transport_options=options, transport=transport) as producer:
        producer.Producer().publish(
            {"x": 1}, exchange=queue.exchange, routing_key="t", declare=[queue]
        )
    connection = Connection(url, transport_options=options, transport=transport)
    got = []
    channel = connection.channel()
    connection.Consumer(queue, callbacks=[lambda body, m: got.append(m)], channel=channel).consume()
    connection.drain_events(timeout=scaled(5))
    assert len(got) == 1 and not got[0].acknowledged
    redis_group.primary.kill()
    connection.transport.client = None  # as Connection._do_close_transport leaves it
    if survives:
        connection.maybe_close_channel(channel)
    else:
        with pytest.raises(AttributeError, match="hostname"):
            connection.maybe_close_channel(channel)
