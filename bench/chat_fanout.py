"""Chat room fan-out benchmark: Huddle vs a bare websockets server vs a minimal
Channels group_send consumer, side by side in one invocation, same wire load.

40 clients in 4 rooms (10 per room) each send chat.send at a fixed rate; every
message is delivered to the 10 sockets of its room (the sender included), so
offered deliveries/s = 40 x rate x 10. For each target and each offered rate:
deliveries/s achieved, p50/p99 latency from send to receive (one clock: the
load generator's), and loss (expected deliveries never received within the
drain time), plus the message frames received per second (Huddle puts the
messages of one commit in one frame, so under load it sends fewer frames than
deliveries). Each client uses its own loopback source address (127.0.1.N), as
40 browsers would.

    .venv/bin/python bench/chat_fanout.py [--rates 2000,4000,8000] [--seconds 4]
        [--targets bare,channels,huddle,huddle2] [--database postgres://...]
    .venv/bin/python bench/chat_fanout.py --targets huddle --rates 8000 --trace DIR
    .venv/bin/python bench/chat_stages.py DIR   # where each delivery's time went

huddle2 is the product as the Procfile runs it with WEB_WORKERS=2: two daphne
processes accepting on one port (videochat.webpool), sharing the database
and Redis; the kernel spreads the sockets (reported per step).
Starts its own private redis-server, nx-27017 (MongoDB protocol: /healthz
needs it), daphne processes and a fresh SQLite database in a temporary folder;
never the shared Redis or MongoDB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from websockets.asyncio.client import connect

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))

from videochat.devstack import (  # noqa: E402
    Service,
    daphne_service,
    free_port,
    http_ok,
    mongo_service,
    redis_service,
)

ROOMS = 4
PER_ROOM = 10
DRAIN_S = 3.0
DATABASE_URL: str | None = None  # --database; default: a fresh SQLite file


@dataclass
class Target:
    name: str
    port: int
    cookies: list[str | None]
    slugs: list[str]
    # The server's process (a webpool's workers are its children), to report
    # how the kernel spread the sockets over the workers.
    pid: int | None = None
    # Every process doing the server's work (the server, its workers, its Redis):
    # their CPU time per delivery holds on a noisy machine better than wall time.
    server_pids: list[int] = field(default_factory=list)


class RoomFull(RuntimeError):
    pass


@dataclass
class Client:
    idx: int
    room: str
    url: str
    origin: str
    cookie: str | None
    latencies: list[int] = field(default_factory=list)
    ack_latencies: list[int] = field(default_factory=list)
    sent_at: dict = field(default_factory=dict)
    seen: set = field(default_factory=set)
    sent: int = 0
    frames: int = 0
    errors: dict = field(default_factory=dict)
    last_rx: int = 0
    ws: object = None
    # --trace: every delivery's (message key, send time, receive time).
    trace: list | None = None

    async def open(self) -> None:
        # After a saturated step the server may still be working through the
        # last step's backlog, its sockets (and their seats) not yet released.
        deadline = time.monotonic() + 60
        while True:
            try:
                return await self._open()
            except RoomFull:
                await self.ws.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _open(self) -> None:
        headers = {"Cookie": f"sessionid={self.cookie}"} if self.cookie else {}
        self.ws = await connect(
            self.url,
            origin=self.origin,
            additional_headers=headers,
            compression=None,
            ping_interval=None,
            max_queue=None,
            open_timeout=20,
            local_addr=(f"127.0.1.{self.idx + 1}", 0),
        )
        await self.ws.send(json.dumps({"type": "hello", "v": 1}))
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if frame["type"] == "welcome":
                # As every Huddle client does after welcome (it also subscribes this
                # socket to the room's wake-ups); the reference servers ignore it.
                await self.ws.send(json.dumps({"type": "chat.sync", "after_seq": 0, "limit": 1}))
                return
            if frame["type"] == "error":
                raise (RoomFull if frame["code"] == "room_full" else RuntimeError)(
                    f"refused: {frame}"
                )

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.monotonic_ns()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind in ("chat.message", "chat.messages"):
                    # Huddle sends the messages of one commit in one frame under load.
                    self.frames += 1
                    for m in frame["messages"] if kind == "chat.messages" else [frame]:
                        sender, n, t0 = m["body"].split("|")
                        key = (sender, n)
                        if key in self.seen:
                            continue  # counted once, like a client that dedups by seq
                        self.seen.add(key)
                        self.latencies.append(now - int(t0))
                        self.last_rx = now
                        if self.trace is not None:
                            self.trace.append((f"{sender}|{n}", int(t0), now))
                elif kind == "chat.ack":
                    t0 = self.sent_at.pop(frame["client_id"], None)
                    if t0 is not None:
                        self.ack_latencies.append(now - t0)
                elif kind == "error":
                    self.errors[frame.get("code")] = self.errors.get(frame.get("code"), 0) + 1
        except Exception:  # noqa: BLE001, S110
            pass

    async def send_loop(self, rate: float, seconds: float, start: float) -> None:
        count = int(rate * seconds)
        for k in range(count):
            due = start + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t_send = time.monotonic_ns()
            body = f"c{self.idx}|{k}|{t_send}"
            client_id = f"{self.idx}-{start}-{k}"
            self.sent_at[client_id] = t_send
            await self.ws.send(
                json.dumps({"type": "chat.send", "client_id": client_id, "body": body})
            )
            self.sent += 1


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children, so far."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def pct(values: list[int], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] / 1e6


async def run_step(
    target: Target, deliveries_per_s: int, seconds: float, trace: Path | None = None
) -> dict:
    rate = deliveries_per_s / (ROOMS * PER_ROOM * PER_ROOM)  # messages/s per client
    clients = [
        Client(
            idx=i,
            room=target.slugs[i % ROOMS],
            url=f"ws://127.0.0.1:{target.port}/ws/rooms/{target.slugs[i % ROOMS]}/",
            origin=f"http://127.0.0.1:{target.port}",
            cookie=target.cookies[i],
            trace=[] if trace else None,
        )
        for i in range(ROOMS * PER_ROOM)
    ]
    for c in clients:  # one by one: connection storms are not what is measured
        await c.open()
    spread = sockets_per_worker(target)
    readers = [asyncio.create_task(c.read()) for c in clients]
    await asyncio.sleep(0.5)
    start = time.monotonic() + 0.2
    t0 = time.monotonic_ns()
    cpu0 = cpu_seconds(target.server_pids)
    # Phases spread evenly: a steady offered stream, not 40 sends in lockstep.
    n = len(clients)
    await asyncio.gather(
        *(c.send_loop(rate, seconds, start + (i / n) / rate) for i, c in enumerate(clients))
    )
    sent_by_room: dict[str, int] = {}
    for c in clients:
        sent_by_room[c.room] = sent_by_room.get(c.room, 0) + c.sent
    expected = sum(sent_by_room[c.room] for c in clients)
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and sum(len(c.seen) for c in clients) < expected:
        await asyncio.sleep(0.05)
    cpu = cpu_seconds(target.server_pids) - cpu0
    for c in clients:
        await c.ws.close()
    for r in readers:
        r.cancel()
    delivered = sum(len(c.seen) for c in clients)
    if trace:
        (trace / "clients.json").write_text(json.dumps([d for c in clients for d in c.trace or ()]))
    last = max((c.last_rx for c in clients), default=t0)
    lat = [x for c in clients for x in c.latencies]
    ack_lat = [x for c in clients for x in c.ack_latencies]
    errors: dict = {}
    for c in clients:
        for k, v in c.errors.items():
            errors[k] = errors.get(k, 0) + v
    return {
        "target": target.name,
        "offered": deliveries_per_s,
        "achieved": round(delivered / max((last - t0) / 1e9, seconds), 1),
        "p50_ms": round(pct(lat, 0.50), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "ack_p50_ms": round(pct(ack_lat, 0.50), 2),
        # Message frames received; below deliveries when messages share a frame.
        "frames_per_s": round(sum(c.frames for c in clients) / max((last - t0) / 1e9, seconds), 1),
        "loss": round(1 - delivered / expected, 5) if expected else None,
        # Server CPU (its processes and, for Channels and Huddle, its Redis) per delivery.
        "cpu_us_per_delivery": round(cpu / delivered * 1e6, 1) if delivered else None,
        "expected": expected,
        "delivered": delivered,
        "errors": errors,
        **({"sockets_per_worker": spread} if spread else {}),
    }


def sockets_per_worker(target: Target) -> list[int]:
    """Client sockets each webpool worker accepted (empty for a single process)."""
    if target.pid is None:
        return []
    workers = psutil.Process(target.pid).children()
    return sorted(
        sum(
            1
            for conn in worker.net_connections(kind="tcp")
            if conn.status == psutil.CONN_ESTABLISHED
            and conn.laddr.port == target.port
            and conn.raddr
            and conn.raddr.ip.startswith("127.0.1.")
        )
        for worker in workers
    )


def daphne(app: str, port: int, run: Path, env: dict[str, str], workers: int = 1) -> Service:
    return daphne_service(run, port, app=app, env=env, workers=workers)


_huddle: tuple[dict[str, str], list[str], list[str]] | None = None


def huddle_setup(
    run: Path, redis_url: str, mongodb_uri: str
) -> tuple[dict[str, str], list[str], list[str]]:
    """A fresh database with 4 rooms of 10 members each; returns (env, cookies, slugs)."""
    global _huddle
    if _huddle is None:
        _huddle = _huddle_setup(run, redis_url, mongodb_uri=mongodb_uri)
    return _huddle


def stores(run: Path) -> tuple[Service, Service]:
    """A private Redis and a private nx-27017, started (also bench/capacity.py's)."""
    redis = redis_service(run, persist=False).start()
    try:
        mongo = mongo_service(run).start()
    except BaseException:
        redis.stop()
        raise
    return redis, mongo


def _huddle_setup(
    run: Path,
    redis_url: str,
    *,
    rooms: int = ROOMS,
    per_room: int = PER_ROOM,
    mongodb_uri: str | None = None,
) -> tuple[dict[str, str], list[str], list[str]]:
    """Also bench/load_recovery.py's: ``rooms`` rooms of ``per_room`` members each."""
    env = {
        "DATABASE_URL": DATABASE_URL or f"sqlite:///{run / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        # /healthz (which daphne_service waits for) asks MongoDB too.
        **({"MONGODB_URI": mongodb_uri} if mongodb_uri else {}),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-" + os.urandom(16).hex(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # Persistent database connections (a documented setting): opening a
        # connection per database_sync_to_async call costs ~15 ms on SQLite here.
        "DATABASE_CONN_MAX_AGE": "600",
        # The per-user chat and frame limits and the per-address frame limit
        # are for people; 40 bench users send faster.
        **{
            f"{limit}_{part}": "100000"
            for limit in ("CHAT_RATE", "FRAME_RATE", "FRAME_RATE_IP")
            for part in ("PER_S", "BURST")
        },
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "videochat.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client as DjangoClient

    from rooms import services

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    users = [user_model.objects.create(username=f"bench{i}") for i in range(rooms * per_room)]
    slugs = []
    for r in range(rooms):
        room = services.room_create(
            owner=users[r],
            name=f"Bench {r}",
            slug=f"bench-{r}",
            capacity=max(12, per_room + 2),
            guest_access=False,
        )
        slugs.append(room.slug)
    for i, user in enumerate(users):
        room_idx = i % rooms
        if i >= rooms:  # the first ones own their rooms already
            from rooms.models import Room

            services.membership_join(
                invite=Room.objects.get(slug=slugs[room_idx]).invites.first(), user=user
            )
    cookies = []
    for user in users:
        c = DjangoClient()
        c.force_login(user)
        cookies.append(c.cookies["sessionid"].value)
    return env, cookies, slugs


DEFAULT_RATES = [2000, 4000, 8000, 16000, 24000, 32000, 48000, 64000, 96000, 128000]


async def run_target(
    target: Target, rates: list[int], seconds: float, trace: Path | None = None
) -> list[dict]:
    rows = []
    for offered in rates:
        row = await run_step(target, offered, seconds, trace)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if row["achieved"] < 0.5 * offered:
            break  # saturated: higher rates only queue up
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument(
        "--targets",
        default="bare,channels,huddle,huddle2",
        help="any of bare, channels, huddle, huddle2 (two daphne processes)",
    )
    parser.add_argument(
        "--database",
        default=None,
        help="a PostgreSQL URL (postgres://user@host:port/db, db to connect to): Huddle "
        "gets a fresh database on that server, dropped at the end; default: a fresh SQLite file",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs)")
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        help="an empty folder: Huddle runs with bench/chat_stages.py's stage timestamps, "
        "the clients note each delivery; then `python bench/chat_stages.py FOLDER` "
        "(one rate, target huddle)",
    )
    args = parser.parse_args()
    rates = [int(x) for x in args.rates.split(",")]
    if args.trace and (len(rates) != 1 or args.targets != "huddle"):
        parser.error("--trace takes one rate and --targets huddle")
    global DATABASE_URL
    dropdb = None
    if args.database:
        import psycopg

        name = f"chat_bench_{os.getpid()}"
        with psycopg.connect(args.database, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        DATABASE_URL = f"{args.database.rsplit('/', 1)[0]}/{name}"

        def dropdb() -> None:
            with psycopg.connect(args.database, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    run = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    redis, mongo = stores(run)
    redis_url = f"redis://127.0.0.1:{redis.port}/0"
    mongodb_uri = f"mongodb://127.0.0.1:{mongo.port}/"
    results: list[dict] = []
    services: list[Service] = [mongo, redis]
    try:
        for name in args.targets.split(","):
            port = free_port()
            if name == "bare":
                svc = Service(
                    "bare",
                    port,
                    [sys.executable, str(BASE / "bench" / "chat_bare_server.py"), str(port)],
                    run / "bare.log",
                )
                target = Target(name, port, [None] * 40, [f"r{i}" for i in range(ROOMS)])
            elif name == "channels":
                svc = daphne(
                    "bench.chat_channels_min:application",
                    port,
                    run,
                    {"REDIS_URL": redis_url, "PYTHONPATH": str(BASE)},
                )
                target = Target(name, port, [None] * 40, [f"r{i}" for i in range(ROOMS)])
            elif name in ("huddle", "huddle2"):
                env, cookies, slugs = huddle_setup(run, redis_url, mongodb_uri)
                # huddle2: two daphne processes on one port (videochat.webpool,
                # WEB_WORKERS=2), sharing the database and Redis.
                workers = 2 if name == "huddle2" else 1
                app = "videochat.asgi:application"
                if args.trace:
                    args.trace.mkdir(parents=True, exist_ok=True)
                    env = {**env, "CHAT_TRACE_DIR": str(args.trace.resolve())}
                    env["PYTHONPATH"] = str(BASE)
                    app = "bench.chat_stages:application"
                svc = daphne(app, port, run, env, workers)
                if args.trace:  # ready when the product's /healthz answers, as for the product
                    svc.ready = lambda port=port: http_ok(f"http://127.0.0.1:{port}/healthz")
                target = Target(name, port, cookies, slugs)
            else:
                raise SystemExit(f"unknown target {name}")
            services.append(svc)
            svc.start()
            if name == "huddle2":
                target.pid = svc.proc.pid
            target.server_pids = [svc.proc.pid] + ([] if name == "bare" else [redis.proc.pid])
            try:
                results += asyncio.run(run_target(target, rates, args.seconds, args.trace))
            finally:
                svc.stop()
                subprocess.run(
                    ["redis-cli", "-p", str(redis.port), "flushall"],  # noqa: S607
                    capture_output=True,
                    check=False,
                )
    finally:
        for svc in reversed(services):
            svc.stop()
        if dropdb:
            dropdb()
        if args.keep:
            print(f"run folder kept: {run}")
        else:
            shutil.rmtree(run, ignore_errors=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    print(f"\nmachine: nproc={os.cpu_count()} python={platform.python_version()} cpu={cpu}")
    print(
        "| target | offered deliveries/s | achieved/s | frames/s | p50 ms | p99 ms | ack p50 ms "
        "| loss | CPU µs/delivery | errors |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['target']} | {r['offered']} | {r['achieved']} | {r['frames_per_s']} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['ack_p50_ms']} | {r['loss']:.2%} | "
            f"{r['cpu_us_per_delivery']} | {r['errors'] or ''} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
