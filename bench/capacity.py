"""Capacity of one web process: idle sockets and their memory, and a join storm.

    .venv/bin/python bench/capacity.py [--sockets 5000] [--addresses 20] [--rooms 100]
        [--storm 500] [--storm-seconds 10] [--hold 35]

1. Idle sockets: ``--sockets`` room sockets are opened on one daphne process
   from ``--addresses`` loopback source addresses (127.0.2.N, as that many
   households would) into ``--rooms`` rooms of 10 members (5,000 sockets in 100
   rooms: each member has 5 tabs open, 50 peers a room), each says hello and
   is welcomed, then they sit idle for
   ``--hold`` seconds, pinging every 10 s as the browser does (past the 30 s
   presence timeout, so the server's reaping runs). Reports the sockets still
   open and answering at the end, the server's resident memory per socket
   (RSS after minus RSS before, over the sockets), and the server's CPU while
   they idle as a share of one core (a process serves sockets until that
   reaches 1).
2. Join storm: ``--storm`` sockets join within ``--storm-seconds`` (a steady
   arrival rate; each connects, says hello and waits for welcome), on a fresh
   server, with the product's default per-address limits and the joins spread
   over the source addresses. Reports joins welcomed, refused, failed, and the
   time to welcome (p50/p99/max).

Starts its own redis-server and nx-27017 (MongoDB protocol), one daphne process
and a fresh SQLite database in a temporary folder; never a shared Redis or
MongoDB. Chat CPU per delivery beside the bare server: bench/chat_fanout.py (its
``CPU µs/delivery`` column).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
from websockets.asyncio.client import connect

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))

from bench.chat_fanout import _huddle_setup, cpu_seconds, pct, stores  # noqa: E402
from videochat.devstack import Service, daphne_service, free_port  # noqa: E402

PING_EVERY_S = 10.0


def rss(pid: int) -> int:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


async def open_socket(url: str, origin: str, cookie: str, source: str) -> object:
    ws = await connect(
        url,
        origin=origin,
        additional_headers={"Cookie": f"sessionid={cookie}"},
        compression=None,
        ping_interval=None,
        open_timeout=60,
        local_addr=(source, 0),
    )
    await ws.send(json.dumps({"type": "hello", "v": 1}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if frame["type"] == "welcome":
            return ws
        if frame["type"] == "error":
            await ws.close()
            raise RuntimeError(frame.get("code"))


async def keep_alive(ws, stop: asyncio.Event, answered: dict) -> None:
    """Ping like the browser; count the pongs (a socket that answers is alive)."""
    await asyncio.sleep(random.uniform(0, PING_EVERY_S))
    while not stop.is_set():
        await ws.send(json.dumps({"type": "ping", "t": 0}))
        try:
            await asyncio.wait_for(stop.wait(), PING_EVERY_S)
        except TimeoutError:
            pass


async def reader(ws, answered: dict, key: int) -> None:
    try:
        async for raw in ws:
            if json.loads(raw).get("type") == "pong":
                answered[key] = time.monotonic()
    except Exception:  # noqa: BLE001, S110 - a closed socket shows as not answering
        pass


async def idle_sockets(
    port: int, cookies: list[str], slugs: list[str], args, server_pid: int
) -> dict:
    url_of = [f"ws://127.0.0.1:{port}/ws/rooms/{slug}/" for slug in slugs]
    origin = f"http://127.0.0.1:{port}"
    sockets: list = []
    failures: dict[str, int] = {}
    answered: dict[int, float] = {}
    # Each socket is read and pings from the moment it is welcomed: the presence
    # news of the later joins would otherwise fill its buffers and stall the
    # server, and a socket silent for 30 s while the others open is reaped.
    tasks: list[asyncio.Task] = []
    stop = asyncio.Event()
    started = time.monotonic()
    for batch in range(0, args.sockets, 200):
        results = await asyncio.gather(
            *(
                open_socket(
                    url_of[i % len(slugs)],
                    origin,
                    cookies[i % len(cookies)],
                    f"127.0.2.{i % args.addresses + 1}",
                )
                for i in range(batch, min(args.sockets, batch + 200))
            ),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                failures[str(r)[:60]] = failures.get(str(r)[:60], 0) + 1
            else:
                tasks.append(asyncio.create_task(reader(r, answered, len(sockets))))
                tasks.append(asyncio.create_task(keep_alive(r, stop, answered)))
                sockets.append(r)
    opened_s = time.monotonic() - started
    cpu0, held_from = cpu_seconds([server_pid]), time.monotonic()
    await asyncio.sleep(args.hold)
    # The server's CPU while the sockets idle (pings, re-checks): the share of one
    # core it needs for this many idle sockets, which holds on a noisy machine.
    cpu_share = (cpu_seconds([server_pid]) - cpu0) / (time.monotonic() - held_from)
    check_from = time.monotonic()
    await asyncio.sleep(PING_EVERY_S + 2)  # every socket pinged once more since check_from
    alive = sum(1 for t in answered.values() if t >= check_from)
    stop.set()
    return {
        "opened": len(sockets),
        "open_failures": failures,
        "open_seconds": round(opened_s, 1),
        "alive_after_hold": alive,
        "server_cpu_share_while_idle": round(cpu_share, 3),
        "_sockets": sockets,
        "_tasks": tasks,
    }


async def join_storm(port: int, cookies: list[str], slugs: list[str], args) -> dict:
    origin = f"http://127.0.0.1:{port}"
    times: list[int] = []
    refused: dict[str, int] = {}
    failed: dict[str, int] = {}
    sockets = []

    async def join(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        t0 = time.monotonic_ns()
        try:
            ws = await open_socket(
                f"ws://127.0.0.1:{port}/ws/rooms/{slugs[i % len(slugs)]}/",
                origin,
                cookies[i % len(cookies)],
                f"127.0.3.{i % args.addresses + 1}",
            )
        except RuntimeError as exc:
            refused[str(exc)] = refused.get(str(exc), 0) + 1
            return
        except Exception as exc:  # noqa: BLE001 - counted and reported
            name = type(exc).__name__
            failed[name] = failed.get(name, 0) + 1
            return
        times.append(time.monotonic_ns() - t0)
        sockets.append(ws)

    start = time.monotonic() + 0.5
    step = args.storm_seconds / args.storm
    await asyncio.gather(*(join(i, start + i * step) for i in range(args.storm)))
    for ws in sockets:
        await ws.close()
    return {
        "joins": args.storm,
        "within_s": args.storm_seconds,
        "welcomed": len(times),
        "refused": refused,
        "failed": failed,
        "welcome_p50_ms": round(pct(times, 0.5), 1),
        "welcome_p99_ms": round(pct(times, 0.99), 1),
        "welcome_max_ms": round(max(times) / 1e6, 1) if times else None,
    }


def start_server(run: Path, env: dict[str, str]) -> Service:
    return daphne_service(run, free_port(), env=env).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/capacity.py")
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--addresses", type=int, default=20)
    parser.add_argument(
        "--rooms", type=int, default=100, help="rooms of 10 members; the sockets spread over them"
    )
    parser.add_argument("--hold", type=float, default=35.0)
    parser.add_argument("--storm", type=int, default=500)
    parser.add_argument("--storm-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if not (1 <= args.sockets <= 20000 and 1 <= args.addresses <= 250):
        parser.error("--sockets must be from 1 to 20000 and --addresses from 1 to 250")
    if not 1 <= args.rooms <= 1000:
        parser.error("--rooms must be from 1 to 1000")
    if not (1 <= args.storm <= 5000 and args.storm_seconds > 0):
        parser.error("--storm must be from 1 to 5000 and --storm-seconds positive")
    run = Path(tempfile.mkdtemp(prefix="capacity-"))
    redis, mongo = stores(run)
    services = [mongo, redis]
    try:
        env, cookies, slugs = _huddle_setup(
            run,
            f"redis://127.0.0.1:{redis.port}/0",
            rooms=args.rooms,
            per_room=10,
            mongodb_uri=f"mongodb://127.0.0.1:{mongo.port}/",
        )
        # Idle sockets: one person's many tabs are not what is measured.
        idle_env = {
            **env,
            **{
                f"{limit}_{part}": "1000000"
                for limit in ("CONNECT_RATE_IP", "FRAME_RATE_IP", "FRAME_RATE")
                for part in ("PER_S", "BURST")
            },
        }
        server = start_server(run, idle_env)
        services.append(server)
        time.sleep(1)
        before = rss(server.proc.pid)
        idle = asyncio.run(_idle_then_measure(server, cookies, slugs, args, before))
        server.stop()
        # The storm on a fresh server with the product's per-address limits.
        storm_env = {
            k: v for k, v in env.items() if not k.startswith(("FRAME_RATE_IP", "CONNECT_RATE_IP"))
        }
        server = start_server(run, storm_env)
        services.append(server)
        storm = asyncio.run(join_storm(server.port, cookies, slugs, args))
    finally:
        for svc in reversed(services):
            svc.stop()
        shutil.rmtree(run, ignore_errors=True)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}"
    )
    print(json.dumps({"machine": machine, "idle": idle, "storm": storm}, indent=1))
    return 0


async def _idle_then_measure(server: Service, cookies, slugs, args, before: int) -> dict:
    result = await idle_sockets(server.port, cookies, slugs, args, server.proc.pid)
    sockets, tasks = result.pop("_sockets"), result.pop("_tasks")
    after = rss(server.proc.pid)
    result["server_rss_before_mib"] = round(before / 2**20, 1)
    result["server_rss_after_mib"] = round(after / 2**20, 1)
    result["kib_per_socket"] = round((after - before) / 1024 / max(1, len(sockets)), 1)
    for ws in sockets:
        await ws.close()
    for t in tasks:
        t.cancel()
    return result


if __name__ == "__main__":
    sys.exit(main())
