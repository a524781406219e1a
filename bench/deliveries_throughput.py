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
The receiver (minimal asyncio HTTP/1.1, keep-alive) runs in a process of its own.
Reported: the median deliveries (or tasks) per second, wall clock from the
first enqueue to the last completion.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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


def _serve(port_out, ok, fail_first) -> None:
    """The receiver, in its own process (as receivers are): a minimal asyncio
    HTTP/1.1 keep-alive server, so the benchmark measures our pipeline rather
    than http.server's parsing. 200, or 503 to the first attempt of each
    delivery when ``fail_first`` is set."""
    import asyncio

    seen: set[bytes] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, delivery = 0, b""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"x-huddle-delivery":
                        delivery = value.strip()
                await reader.readexactly(length)
                fail = bool(fail_first.value) and delivery not in seen
                seen.add(delivery)
                if not fail:
                    with ok.get_lock():
                        ok.value += 1
                status = b"503 Service Unavailable" if fail else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_out.value = server.sockets[0].getsockname()[1]
        await server.serve_forever()

    asyncio.run(main())


class Receiver:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ok = ctx.Value("i", 0)
        self._fail_first = ctx.Value("b", 0)
        port = ctx.Value("i", 0)
        self.proc = ctx.Process(target=_serve, args=(port, self._ok, self._fail_first), daemon=True)
        self.proc.start()
        wait_for(lambda: port.value != 0, 30)
        self.port = port.value

    @property
    def ok(self) -> int:
        return self._ok.value

    def reset(self, *, fail_first: bool) -> None:
        with self._ok.get_lock():
            self._ok.value = 0
        self._fail_first.value = int(fail_first)

    def stop(self) -> None:
        self.proc.terminate()


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
    from videochat.devstack import celery_worker_argv

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
        celery_worker_argv(
            concurrency=args.concurrency,
            loglevel=os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
        ),
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
        receiver.stop()
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
    for name in ("pipeline", "retry1"):
        ratios = [x / n for x, n in zip(results[name], results["noop"], strict=True)]
        print(
            f"{name} / noop, round by round: {', '.join(f'{r:.2f}' for r in ratios)} "
            f"(median {statistics.median(ratios):.2f})"
        )
    print(f"load average: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
