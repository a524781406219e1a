"""Cost of the moderation/security guard on every room-socket frame.

Run inside a private stack (never the shared Redis):

    DJANGO_DEBUG=1 .venv/bin/python -m videochat.devstack --fresh exec -- \
        .venv/bin/python bench/frame_guard.py --n 1000 --rounds 5

One socket through the real ASGI router (in process, real Redis channel layer
and Redis rate limits, SQLite in a temp folder) sends ``--n`` pings pipelined
and waits for every pong. Two variants interleaved round by round so machine
load hits them alike:
- guard:    as shipped: the frame's charge (rooms.security.AddressGate.charge:
            address, user and the type's own token buckets and the moderation
            revision, one Redis script call) and rooms.security.check_frame
            (per-type size, own-limit refusal, membership re-check);
- no-guard: both replaced by no-ops (the reference).
The per-user frame limit is raised for both so neither is rate limited.
Reported: median pings per second (send of the first to the last pong).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def setup() -> str:
    tmp = tempfile.mkdtemp(prefix="bench-guard-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from rooms import services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    services.room_create(owner=user, name="Bench", slug="bench", capacity=6, guest_access=False)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def one_round(cookie: str, n: int) -> float:
    from channels.testing import WebsocketCommunicator

    from rooms.protocol import PROTOCOL_VERSION
    from videochat.asgi import application

    headers = [
        (b"host", b"localhost"),
        (b"origin", b"http://localhost"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    comm = WebsocketCommunicator(application, "/ws/rooms/bench/", headers=headers)
    connected, code = await comm.connect()
    assert connected, code
    await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
    while (await comm.receive_json_from(timeout=10))["type"] != "welcome":
        pass
    start = time.perf_counter()
    for i in range(n):
        await comm.send_json_to({"type": "ping", "t": i})
    got = 0
    while got < n:
        frame = await comm.receive_json_from(timeout=30)
        if frame["type"] == "pong":
            got += 1
        elif frame["type"] == "error":
            raise RuntimeError(frame)
    elapsed = time.perf_counter() - start
    await comm.disconnect()
    return n / elapsed


async def main(n: int, rounds: int) -> None:
    from rooms import security
    from videochat import ratelimit
    from videochat.redis import get_redis

    big = ratelimit.Limit("bench", rate=1e6, burst=10**7)
    security.USER_FRAME_LIMIT = big
    security.IP_FRAME_LIMIT = big
    security.IP_CONNECT_LIMIT = big
    shipped = (security.check_frame, security.AddressGate.charge)

    async def no_check(session, frame, **_):
        return True

    async def no_charge(self, **_):
        return None, None

    results: dict[str, list[float]] = {"guard": [], "no-guard": []}
    for _ in range(rounds):
        for name, (check, charge) in (("guard", shipped), ("no-guard", (no_check, no_charge))):
            await get_redis().delete(*[k async for k in get_redis().scan_iter("rl:*")] or ["x"])
            security.check_frame = check
            security.AddressGate.charge = charge  # type: ignore[method-assign]
            results[name].append(await one_round(COOKIE, n))
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:9s} median {median:8.0f} pings/s  rounds {[round(v) for v in values]}")
    g, r = statistics.median(results["guard"]), statistics.median(results["no-guard"])
    cost_us = (1 / g - 1 / r) * 1e6
    print(f"guard costs {cost_us:.0f} µs per frame ({(1 - g / r) * 100:.1f}% of throughput)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    COOKIE = setup()
    asyncio.run(main(args.n, args.rounds))
