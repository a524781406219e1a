"""The delivery pipeline end to end: a real Celery worker on the private Redis,
a local HTTP receiver, the MongoDB-protocol server for dead letters."""

import json
import os
import signal

import pytest

from deliveries import breaker, deadletters, pipeline, services, signing
from deliveries.models import Webhook
from tests.fixtures.live import run_manage
from tests.fixtures.workers import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def make_hook(room, url, events=("message.posted",)):
    return Webhook.objects.create(room=room, url=url, events=list(events))


def emit(room, data=None):
    assert services.room_event_emit(room_id=room.pk, event="message.posted", data=data or {})


def only_delivery_id(rec):
    ids = {h.delivery_id for h in rec.hits}
    assert len(ids) == 1, ids
    return ids.pop()


def test_receiver_failing_twice_gets_it_once_with_backoff_spacing(
    room, receiver, celery_worker, settings
):
    rec = receiver(fail_times=2)
    hook = make_hook(room, rec.url)
    celery_worker()
    emit(room, {"seq": 7})
    hits = rec.wait_hits(3)
    delivery_id = only_delivery_id(rec)
    assert [h.status for h in hits] == [503, 503, 200]
    assert rec.delivered_ids() == [delivery_id]
    # Attempt n waits base * 2**(n-1), minus up to half of it (jitter).
    base = settings.DELIVERY_RETRY_BASE_S
    for n, (before, after) in enumerate(zip(hits, hits[1:], strict=False), start=1):
        delay = base * 2 ** (n - 1)
        gap = after.at - before.at
        assert delay * (1 - settings.DELIVERY_RETRY_JITTER) - 0.05 <= gap <= delay + 1.5, (n, gap)
    # Signed so the receiver can verify it; the same id on every retry.
    last = hits[-1]
    assert signing.signature_verify(
        secret=hook.secret, timestamp=last.timestamp, body=last.body, signature=last.signature
    )
    body = json.loads(last.body)
    assert body["id"] == delivery_id and body["data"] == {"seq": 7}
    assert body["event"] == "message.posted" and body["room_id"] == room.pk
    status = wait_until(
        lambda: (
            (s := pipeline.delivery_status(delivery_id=delivery_id))["status"] == "delivered" and s
        )
    )
    assert [a["error"] for a in status["attempts"]] == ["HTTP 503", "HTTP 503", None]
    assert deadletters.deadletter_get(delivery_id=delivery_id) is None
    # Nothing else arrives later.
    with pytest.raises(TimeoutError):
        rec.wait_hits(4, timeout=1.5)


def test_always_failing_receiver_makes_exactly_one_dead_letter_then_replay_delivers(
    room, receiver, celery_worker, settings, admin_client
):
    rec = receiver()
    rec.always_fail()
    make_hook(room, rec.url)
    celery_worker()
    emit(room, {"seq": 1})
    attempts = settings.DELIVERY_MAX_ATTEMPTS
    rec.wait_hits(attempts)
    delivery_id = only_delivery_id(rec)
    doc = wait_until(
        lambda: deadletters.deadletter_get(delivery_id=delivery_id), what="dead letter"
    )
    assert doc["status"] == "dead" and doc["kind"] == "webhook" and doc["target"] == rec.url
    assert doc["attempt_count"] == attempts == len(doc["attempts"])
    assert all(a["error"] == "HTTP 503" and a["at"] for a in doc["attempts"])
    assert doc["payload"]["data"] == {"seq": 1}
    assert deadletters.collection().count_documents({}) == 1
    with pytest.raises(TimeoutError):
        rec.wait_hits(attempts + 1, timeout=1.5)  # no retry after the last one

    # The admin lists, filters and opens it.
    listing = admin_client.get(
        "/admin/deliveries/deadletter/", {"kind": "webhook", "status": "dead"}
    )
    assert listing.status_code == 200 and delivery_id in listing.content.decode()
    assert (
        delivery_id
        not in admin_client.get("/admin/deliveries/deadletter/", {"kind": "email"}).content.decode()
    )
    detail = admin_client.get(f"/admin/deliveries/deadletter/{delivery_id}/")
    assert detail.status_code == 200 and "HTTP 503" in detail.content.decode()

    # The receiver recovers; a moderator replays it from the admin.
    rec.recover()
    response = admin_client.post(
        f"/admin/deliveries/deadletter/{delivery_id}/", {"action": "replay"}
    )
    assert response.status_code == 302
    wait_until(lambda: rec.delivered_ids() == [delivery_id], what="the replayed delivery")
    doc = deadletters.deadletter_get(delivery_id=delivery_id)
    assert doc["status"] == "replayed" and doc["replays"] == 1
    wait_until(lambda: pipeline.delivery_status(delivery_id=delivery_id)["status"] == "delivered")
    # A second replay of the same letter does nothing: it is no longer dead.
    admin_client.post(f"/admin/deliveries/deadletter/{delivery_id}/", {"action": "replay"})
    with pytest.raises(TimeoutError):
        rec.wait_hits(attempts + 2, timeout=1.5)
    assert rec.delivered_ids() == [delivery_id]


def test_replay_command_delivers_dead_letters_once_receiver_recovers(
    room, receiver, celery_worker, settings, delivery_settings
):
    rec = receiver()
    rec.always_fail()
    make_hook(room, rec.url)
    celery_worker()
    emit(room)
    emit(room)
    attempts = settings.DELIVERY_MAX_ATTEMPTS
    wait_until(
        lambda: deadletters.collection().count_documents({"status": "dead"}) == 2,
        what="two dead letters",
    )
    assert len(rec.hits) == 2 * attempts
    rec.recover()
    dry = run_manage("deliveries_replay", "--kind", "webhook", "--dry-run", **delivery_settings)
    assert dry.returncode == 0, dry.stderr
    assert len(json.loads(dry.stdout)["would_replay"]) == 2
    assert deadletters.collection().count_documents({"status": "dead"}) == 2
    real = run_manage(
        "deliveries_replay", "--kind", "webhook", "--since", "1h", **delivery_settings
    )
    assert real.returncode == 0, real.stderr
    assert len(json.loads(real.stdout)["replayed"]) == 2
    wait_until(lambda: len(rec.delivered_ids()) == 2, what="both replays delivered")
    assert len(set(rec.delivered_ids())) == 2
    assert deadletters.collection().count_documents({"status": "replayed"}) == 2


@pytest.mark.fault
def test_worker_killed_mid_delivery_still_delivers_once(room, receiver, celery_worker):
    import threading

    rec = receiver(hold=threading.Event())
    make_hook(room, rec.url)
    worker = celery_worker()
    emit(room)
    assert rec.held.wait(15), "the delivery never reached the receiver"
    delivery_id = wait_until(
        lambda: next(iter({h for h in _pending_ids()}), None), what="the in-flight delivery"
    )
    # The pool process running the task: SIGKILL it while the POST is in flight.
    children = worker.children()
    assert children
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    rec.hold.set()
    wait_until(
        lambda: pipeline.delivery_status(delivery_id=delivery_id)["status"] == "delivered",
        timeout=30,
        what="delivered after the kill",
    )
    status = pipeline.delivery_status(delivery_id=delivery_id)
    errors = [a["error"] for a in status["attempts"]]
    assert errors[-1] is None and "worker lost during the attempt" in errors
    assert deadletters.deadletter_get(delivery_id=delivery_id) is None
    # The receiver answered the killed attempt too; the id lets it drop the repeat.
    assert set(rec.delivered_ids()) == {delivery_id}
    assert "WorkerLostError" in worker.log() or "SIGKILL" in worker.log()


def _pending_ids():
    from deliveries.connections import sync_redis

    r = sync_redis()
    return [
        k.split(":")[1]
        for k in r.scan_iter(match="dlv:*")
        if k.count(":") == 1 and r.hget(k, "inflight")
    ]


def test_breaker_opens_after_repeated_failures_and_closes_after_a_probe(
    room, receiver, celery_worker, settings
):
    rec = receiver()
    rec.always_fail()
    make_hook(room, rec.url)
    # Opens after 2 failures, 2 s cool-down; plenty of attempts to see it work.
    celery_worker(BREAKER_FAIL_MAX="2", DELIVERY_MAX_ATTEMPTS="8", BREAKER_COOLDOWN_S="2")
    target = f"http:127.0.0.1:{rec.port}"
    emit(room)
    rec.wait_hits(2)
    wait_until(lambda: breaker.breaker_info(target=target)["state"] == "open", what="open")
    opened = rec.hits[1].at
    rec.recover()
    # During the cool-down nothing reaches the receiver; then one probe succeeds.
    hits = rec.wait_hits(3, timeout=15)
    assert hits[2].at - opened >= 2 - 0.1, "called during the cool-down"
    assert hits[2].status == 200
    wait_until(lambda: breaker.breaker_info(target=target)["state"] == "closed", what="closed")
    delivery_id = only_delivery_id(rec)
    status = pipeline.delivery_status(delivery_id=delivery_id)
    assert status["status"] == "delivered"
    # Refusals while it was open are counted apart, not as attempts.
    assert [a["error"] for a in status["attempts"]] == ["HTTP 503", "HTTP 503", None]
    assert int(status["state"]["breaker_refusals"]) >= 1


def _delivery_ids() -> list[str]:
    from deliveries.connections import sync_redis

    return [k.split(":")[1] for k in sync_redis().scan_iter(match="dlv:*") if k.count(":") == 1]


def test_a_burst_against_a_receiver_failing_each_delivery_twice_is_delivered_in_full(
    room, receiver, celery_worker, settings
):
    """The breaker opens again and again; waiting for it costs no attempts."""
    rec = receiver(fail_each_delivery_first=2)
    make_hook(room, rec.url)
    celery_worker(BREAKER_FAIL_MAX="3", BREAKER_COOLDOWN_S="0.5", DELIVERY_BREAKER_WAIT_MAX_S="60")
    for seq in range(20):
        emit(room, {"seq": seq})
    ids = wait_until(lambda: len(ids := _delivery_ids()) == 20 and ids, what="20 deliveries")

    def statuses() -> dict[str, str]:
        return {i: pipeline.delivery_status(delivery_id=i)["status"] for i in ids}

    final = wait_until(
        lambda: set((s := statuses()).values()) <= {"delivered", "dead"} and s,
        timeout=120,
        what="every delivery delivered or dead",
    )
    assert sorted(final.values()) == ["delivered"] * 20, final
    assert sorted(rec.delivered_ids()) == sorted(ids)  # each once
    assert deadletters.collection().count_documents({}) == 0
    for delivery_id in ids:
        status = pipeline.delivery_status(delivery_id=delivery_id)
        assert [a["error"] for a in status["attempts"]] == ["HTTP 503", "HTTP 503", None]
    info = breaker.breaker_info(target=f"http:127.0.0.1:{rec.port}")
    assert info["trips"] >= 1, "the breaker never opened: the burst did not test it"
    refusals = sum(
        int(pipeline.delivery_status(delivery_id=i)["state"].get("breaker_refusals", 0))
        for i in ids
    )
    assert refusals > 0


def test_breaker_gives_exactly_one_probe_after_the_cooldown(settings):
    settings.BREAKER_FAIL_MAX = 1
    settings.BREAKER_COOLDOWN_S = 0.3
    target = "http:probe.example:443"
    breaker.breaker_reset(target=target)
    assert breaker.breaker_allow(target=target)["allowed"]
    assert breaker.breaker_record_failure(target=target) == "open"
    refused = breaker.breaker_allow(target=target)
    assert not refused["allowed"] and 0 < refused["wait_s"] <= 0.3
    wait_until(lambda: breaker.breaker_info(target=target)["open_for_s"] == 0, timeout=2)
    import time

    time.sleep(0.05)
    permits = [breaker.breaker_allow(target=target) for _ in range(5)]
    assert [p["allowed"] for p in permits] == [True, False, False, False, False]
    # While the probe is out, the others look again within a cool-down, not
    # after the probe's whole lease (DELIVERY_HTTP_TIMEOUT_S + 5).
    assert all(0 < p["wait_s"] <= 0.3 for p in permits[1:])
    assert breaker.breaker_record_failure(target=target) == "open"  # the probe failed
    assert not breaker.breaker_allow(target=target)["allowed"]
    breaker.breaker_record_success(target=target)
    assert breaker.breaker_allow(target=target)["allowed"]


def test_offline_members_get_email_online_ones_do_not(
    room, owner, member, member_user, celery_worker, delivery_settings, tmp_path
):
    from deliveries.connections import sync_redis

    # The owner is in the call (presence hash), the member is not.
    owner_membership = room.memberships.get(user=owner)
    sync_redis().hset(
        f"presence:{room.pk}", "p1", json.dumps({"peer_id": "p1", "member_id": owner_membership.pk})
    )
    celery_worker()
    n = services.notify_offline_members(
        room_id=room.pk,
        member_ids=[owner_membership.pk, member.pk],
        reason="You were mentioned",
        text="olivia: @marco look at this",
    )
    assert n == 1
    mail_dir = tmp_path / "mail"
    files = wait_until(lambda: list(mail_dir.glob("*.log")) if mail_dir.exists() else [])
    text = files[0].read_text()
    assert member_user.email in text and "look at this" in text
    assert owner.email not in text


@pytest.mark.fault
def test_whole_worker_sigkilled_mid_delivery_is_redone_by_the_next_worker(
    room, receiver, celery_worker
):
    """No Celery process survives to reject the task: the unacknowledged message
    comes back from Redis after the visibility timeout, to a new worker."""
    import threading

    rec = receiver(hold=threading.Event())
    make_hook(room, rec.url)
    env = {
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    }
    worker = celery_worker(**env)
    emit(room)
    assert rec.held.wait(15), "the delivery never reached the receiver"
    delivery_id = wait_until(lambda: next(iter(_pending_ids()), None), what="in flight")
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()
    rec.hold.set()
    celery_worker(**env)
    wait_until(
        lambda: pipeline.delivery_status(delivery_id=delivery_id)["status"] == "delivered",
        timeout=60,
        what="delivered by the second worker",
    )
    errors = [a["error"] for a in pipeline.delivery_status(delivery_id=delivery_id)["attempts"]]
    assert errors == ["worker lost during the attempt", None]
    assert deadletters.deadletter_get(delivery_id=delivery_id) is None
    assert set(rec.delivered_ids()) == {delivery_id}


class TinySMTP:
    """Just enough SMTP to accept mail (Python 3.11's smtpd is deprecated)."""

    def __init__(self, port: int) -> None:
        import socketserver
        import threading

        self.messages: list[bytes] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 tiny ESMTP\r\n")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        self.wfile.write(b"250 tiny\r\n")
                    elif verb == b"DATA":
                        self.wfile.write(b"354 go ahead\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk
                        outer.messages.append(data)
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_email_to_a_down_mail_server_is_dead_lettered_then_replayed(
    room, member, member_user, celery_worker, settings, delivery_settings
):
    from tests.fixtures.workers import free_port

    port = free_port()  # nothing listens yet: the mail server is down
    celery_worker(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
    )
    n = services.notify_offline_members(
        room_id=room.pk, member_ids=[member.pk], reason="Mentioned", text="@marco hello"
    )
    assert n == 1
    doc = wait_until(
        lambda: next(iter(deadletters.collection().find({"kind": "email"})), None),
        what="the email dead letter",
    )
    assert doc["target"] == member_user.email
    assert doc["attempt_count"] == settings.DELIVERY_MAX_ATTEMPTS
    assert "Connection refused" in doc["last_error"] or "Errno" in doc["last_error"]
    smtp = TinySMTP(port)
    try:
        replay = run_manage("deliveries_replay", "--kind", "email", **delivery_settings)
        assert replay.returncode == 0, replay.stderr
        assert json.loads(replay.stdout)["replayed"] == [doc["_id"]]
        wait_until(lambda: smtp.messages, what="the replayed email")
        assert b"@marco hello" in smtp.messages[0]
        assert len(smtp.messages) == 1
    finally:
        smtp.stop()
