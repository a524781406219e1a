"""What a call.stats frame costs the server's event loop, and how fast the writer
thread stores samples in MongoDB (rooms/telemetry.py).

Run inside a private stack (its own Redis and MongoDB-protocol server):

    DJANGO_DEBUG=1 .venv/bin/python -m videochat.devstack --fresh exec -- \\
        .venv/bin/python bench/call_stats_write.py --frames 3000 --peers 3

Three measurements, each with frames of ``--peers`` samples (a call of peers+1):
- in the loop: samples_parse + samples_record (validation, documents, queueing),
  µs per frame, the work the socket's handler does besides its presence lookup;
- the writer: frames queued as fast as possible, wall time until all are stored:
  samples per second into MongoDB (insert_many batches of up to 500);
- MongoDB down: an asyncio loop queues one frame every 5 ms for 5 s while the
  writer fails its batches; reported: the loop's worst lag (how late a 5 ms timer
  fired) and the same for a synchronous insert_one per frame in the loop (what
  the thread avoids), which waits for the 2 s server-selection timeout each time;
  and the worst lag of the same loop doing nothing (the machine's own noise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from rooms import telemetry  # noqa: E402
from videochat.devstack import free_port  # noqa: E402


def frame(peers: int, i: int) -> dict:
    return {
        "type": "call.stats",
        "samples": [
            {
                "peer": f"peer{p}",
                "t": int(time.time() * 1000),
                "rtt": 40.0 + i % 50,
                "loss_in": 0.01,
                "loss_out": 0.02,
                "jitter": 8.0,
                "bw_out": 1500,
                "send_kbps": 900,
                "recv_kbps": 850,
                "qlr": "none",
                "fps_in": 29.5,
                "decoded": 59,
                "dropped": 0,
                "freezes": 0,
                "freeze_ms": 0,
                "conceal": 0.001,
                "relay": False,
                "level": "full",
                "pred": 0.05,
                "events": ["step:reduced:loss"] if i % 20 == 0 else [],
            }
            for p in range(peers)
        ],
    }


def in_loop_cost(frames: list[dict]) -> float:
    """µs per frame of the handler's own work (parse, build, queue)."""
    started = time.perf_counter()
    for f in frames:
        samples = telemetry.samples_parse(f)
        telemetry.samples_record(room="bench", call="c1", from_peer="me", samples=samples)
    return (time.perf_counter() - started) / len(frames) * 1e6


def writer_rate(frames: list[dict]) -> float:
    """Samples per second from first queue to last stored."""
    telemetry.collection().delete_many({"room": "bench"})
    started = time.perf_counter()
    for f in frames:
        telemetry.samples_record(
            room="bench", call="c2", from_peer="me", samples=telemetry.samples_parse(f)
        )
    assert telemetry.writer.flush(timeout=300)
    elapsed = time.perf_counter() - started
    stored = telemetry.collection().count_documents({"room": "bench", "call": "c2"})
    n = sum(len(f["samples"]) for f in frames)
    assert stored == n, (stored, n)
    return n / elapsed


async def loop_lag(handle, seconds: float = 5.0, every: float = 0.005) -> tuple[float, int]:
    """Worst lateness (s) of a timer of ``every`` while ``handle(i)`` runs on each tick."""
    worst, i = 0.0, 0
    deadline = time.perf_counter() + seconds
    last = time.perf_counter()
    while time.perf_counter() < deadline:
        await asyncio.sleep(every)
        now = time.perf_counter()
        # The gap since the last tick beyond the timer's own: the handler's time included.
        worst = max(worst, now - last - every)
        handle(i)
        i += 1
        last = now
    return worst, i


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--peers", type=int, default=3)
    args = parser.parse_args()
    settings.MONGODB_DB = f"bench_call_stats_{os.getpid()}"
    frames = [frame(args.peers, i) for i in range(args.frames)]
    telemetry.collection()  # indexes first, outside the timings
    cost = [in_loop_cost(frames[:1000]) for _ in range(3)]
    assert telemetry.writer.flush(timeout=300)
    rates = [writer_rate(frames) for _ in range(3)]

    good_uri = settings.MONGODB_URI
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/"  # nothing listens
    one = frames[0]

    def queued(i: int) -> None:
        telemetry.samples_record(
            room="bench", call="c3", from_peer="me", samples=telemetry.samples_parse(one)
        )

    def blocking(i: int) -> None:
        docs = telemetry.documents_build(
            room="bench", call="c4", from_peer="me", samples=telemetry.samples_parse(one)
        )
        try:
            telemetry.collection().insert_many(docs)
        except Exception:  # noqa: BLE001, S110 - down on purpose
            pass

    lag_noop, _ = asyncio.run(loop_lag(lambda i: None))
    lag_thread, n_thread = asyncio.run(loop_lag(queued))
    lag_sync, n_sync = asyncio.run(loop_lag(blocking, seconds=5.0))
    settings.MONGODB_URI = good_uri
    telemetry.writer.flush(timeout=60)
    from videochat.mongo import mongo_client

    mongo_client().drop_database(settings.MONGODB_DB)
    print(
        json.dumps(
            {
                "frames": args.frames,
                "samples_per_frame": args.peers,
                "in_loop_us_per_frame": [round(c, 1) for c in cost],
                "writer_samples_per_s": [round(r) for r in rates],
                "writer_samples_per_s_median": round(statistics.median(rates)),
                "idle_loop_worst_lag_ms": round(lag_noop * 1000, 1),
                "mongo_down_thread_worst_loop_lag_ms": round(lag_thread * 1000, 1),
                "mongo_down_thread_frames_in_5s": n_thread,
                "mongo_down_sync_insert_worst_loop_lag_ms": round(lag_sync * 1000, 1),
                "mongo_down_sync_insert_frames_in_5s": n_sync,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
