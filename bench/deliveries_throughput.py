"""Deliveries per second through the retry pipeline vs a no-op Celery task.

Run inside a private stack (never the shared Redis):

    DJANGO_DEBUG=1 .venv/bin/python -m videochat.devstack --fresh exec -- \
        .venv/bin/python bench/deliveries_throughput.py --n 400 --rounds 3

One real Celery worker (prefork, concurrency 2) serves all three workloads,
interleaved round by round so machine load hits them alike:
- noop:      a task that only INCRs a Redis counter (the floor of Celery itself);
- pipeline:  room_event_emit -> deliver task: lock, idempotency state, breaker
             (Lua), signed POST to a local receiver, attempt history, stats;
- retry1:    the same, but the receiver fails each delivery's first attempt, so
             every delivery takes the retry path once (backoff base 0.05 s).
Reported: the median deliveries (or tasks) per second, wall clock from the
first enqueue to the last completion.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

WORKER_ENV = {
    "DELIVERY_RETRY_BASE_S": "0.05",
    "DELIVERY_RETRY_MAX_S": "1",
    "DELIVERY_MAX_ATTEMPTS": "5",
    "BREAKER_FAIL_MAX": "100000",
    "WEBHOOK_ALLOW_PRIVATE": "1",
    "DJANGO_DEBUG": "1",
    "LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}


class Receiver:
    def __init__(self) -> None:
        self.ok = 0
        self.fail_first = False
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like real receivers

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                delivery = self.headers.get("X-Huddle-Delivery", "")
                with rec.lock:
                    fail = rec.fail_first and delivery not in rec.seen
                    rec.seen.add(delivery)
                    if not fail:
                        rec.ok += 1
                self.send_response(503 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self, *, fail_first: bool) -> None:
        with self.lock:
            self.ok, self.fail_first, self.seen = 0, fail_first, set()


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark workload did not finish")
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or ":6379/" in os.environ["REDIS_URL"]:
        raise SystemExit("run inside videochat.devstack (a private Redis), not the shared one")

    tmp = Path(tempfile.mkdtemp(prefix="bench-deliveries-"))
    os.environ.update(WORKER_ENV)
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MONGODB_DB"] = f"bench_{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from deliveries import services, tasks
    from deliveries.connections import sync_redis
    from deliveries.models import Webhook
    from rooms import services as room_services

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench", password="x")  # noqa: S106
    room = room_services.room_create(
        owner=owner, name="Bench", slug="bench", capacity=6, guest_access=False
    )
    receiver = Receiver()
    Webhook.objects.create(
        room=room, url=f"http://127.0.0.1:{receiver.port}/hook", events=["message.posted"]
    )

    log = open(tmp / "worker.log", "wb")
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "videochat",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(args.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
        ],
        cwd=BASE_DIR,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    r = sync_redis()
    try:
        # Warm-up: the worker is ready once a no-op runs.
        tasks.noop.delay(counter_key="bench:warm")
        wait_for(lambda: r.get("bench:warm") == "1", 60)

        def run_noop() -> float:
            key = f"bench:noop:{uuid.uuid4().hex}"
            t0 = time.perf_counter()
            for _ in range(args.n):
                tasks.noop.delay(counter_key=key)
            wait_for(lambda: int(r.get(key) or 0) >= args.n, 300)
            return args.n / (time.perf_counter() - t0)

        def run_pipeline(fail_first: bool) -> float:
            receiver.reset(fail_first=fail_first)
            t0 = time.perf_counter()
            for i in range(args.n):
                services.room_event_emit(room_id=room.pk, event="message.posted", data={"i": i})
            wait_for(lambda: receiver.ok >= args.n, 300)
            return args.n / (time.perf_counter() - t0)

        results: dict[str, list[float]] = {"noop": [], "pipeline": [], "retry1": []}
        for _ in range(args.rounds):
            results["noop"].append(run_noop())
            results["pipeline"].append(run_pipeline(False))
            results["retry1"].append(run_pipeline(True))
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
        print(f"worker log: {tmp / 'worker.log'}")

    noop = statistics.median(results["noop"])
    print(f"n={args.n} per round, rounds={args.rounds}, worker concurrency={args.concurrency}")
    print("| workload | median per s | runs (per s) | vs noop |")
    print("| --- | --- | --- | --- |")
    for name, runs in results.items():
        median = statistics.median(runs)
        print(
            f"| {name} | {median:.0f} | {', '.join(f'{x:.0f}' for x in runs)} "
            f"| {median / noop:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
