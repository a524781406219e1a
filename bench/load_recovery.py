"""Load and recovery run: N chat clients in M rooms through HAProxy in front of
several web nodes, optionally killing a node or Redis mid-run, with an HTML report.

    .venv/bin/python bench/load_recovery.py [--nodes 2] [--rooms 4] [--per-room 10]
        [--rate 2] [--seconds 30] [--kill none|node|redis] [--kill-at 10]
        [--redis-down 3] [--report var/reports/load-recovery.html]

Each client speaks the room protocol as the browser does (tests/fault/client.py:
an outbox resent by client id, resume by seq, gap backfill) and sends ``--rate``
chat messages a second for ``--seconds``. ``--kill node`` SIGKILLs the web node
holding the most sockets at ``--kill-at`` seconds (it stays down: its clients
move to the others through the balancer); ``--kill redis`` SIGKILLs the Redis
server and starts it again ``--redis-down`` seconds later on the same port
(without persistence, as a failed-over primary with no data would be; with
Sentinel the replica would take over instead). At the end every client's log is
checked: 0 acknowledged messages lost, 0 duplicated, one order for all, and the
database agrees (tests/fault/check.py).

The report (HTML with inline SVG plots, and a JSON file beside it) shows per
second: messages committed (acks) and delivered, delivery latency p50/p99 (send
to release in order, one clock), reconnects, and messages still unacknowledged;
then a summary table. Starts its own redis-server, nx-27017 (MongoDB protocol), web
nodes, HAProxy and a fresh SQLite database in a temporary folder; never a shared Redis
or MongoDB. Exit status:
0 when the contract held, 1 when it did not (the report says what broke).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))

from bench.chat_fanout import _huddle_setup, stores  # noqa: E402
from tests.fault.check import check_logs  # noqa: E402
from tests.fault.client import ChatClient, room_heads, stop_clients  # noqa: E402
from videochat import cluster  # noqa: E402
from videochat.devstack import Service, http_ok, redis_service  # noqa: E402
from videochat.svgchart import svg_chart  # noqa: E402

SETTLE_S = 60.0


@dataclass
class Run:
    clients: list[ChatClient]
    started: float
    ended: float
    kill_at: float | None
    outstanding: list[tuple[float, int]]
    killed: str


def sockets_on(node: Service) -> int:
    if node.proc is None or node.proc.poll() is not None:
        return 0
    root = psutil.Process(node.proc.pid)
    return sum(
        1
        for proc in [root, *root.children()]
        for conn in proc.net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == node.port
    )


async def drive(
    clients: list[ChatClient],
    *,
    nodes: list[Service],
    redis: list[Service],
    kill: str,
    kill_at: float,
    redis_down: float,
    seconds: float,
    run_dir: Path,
) -> Run:
    started = time.monotonic()
    tasks = [asyncio.create_task(c.run()) for c in clients]
    outstanding: list[tuple[float, int]] = []
    killed_at: float | None = None
    killed = ""
    try:
        # Sending lasts about ``seconds``; then wait for every ack and every head.
        deadline = started + seconds + SETTLE_S
        while time.monotonic() < deadline:
            now = time.monotonic()
            outstanding.append((now - started, sum(len(c._unacked) for c in clients)))
            if killed_at is None and kill != "none" and now - started >= kill_at:
                killed_at = now
                if kill == "node":
                    victim = max(nodes, key=sockets_on)
                    killed = f"node on port {victim.port} ({sockets_on(victim)} sockets)"
                    victim.kill()
                else:
                    port = redis[0].port
                    redis[0].kill()
                    killed = f"redis on port {port}, down {redis_down:g}s"
                    await asyncio.sleep(redis_down)
                    redis[0] = await asyncio.to_thread(
                        redis_service(run_dir, port, persist=False).start
                    )
            done_sending = now - started > seconds
            if done_sending and all(c.all_acked for c in clients):
                heads = room_heads(clients)
                if all(c.last_seq >= heads.get(c.room, 0) for c in clients):
                    break
            await asyncio.sleep(0.5)
    finally:
        await stop_clients(clients, tasks)
    return Run(clients, started, time.monotonic(), killed_at, outstanding, killed)


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def series(run: Run) -> dict[str, list[tuple[float, float]]]:
    """Per-second series, x = seconds since the start."""
    sent_at = {cid: t for c in run.clients for cid, t in c.sent_at.items()}
    span = int(run.ended - run.started) + 1
    acks = [0] * span
    delivered = [0] * span
    reconnects = [0] * span
    latencies: list[list[float]] = [[] for _ in range(span)]
    for c in run.clients:
        for t in c.acked_at.values():
            acks[min(span - 1, int(t - run.started))] += 1
        for t, cid in c.released:
            sec = min(span - 1, int(t - run.started))
            delivered[sec] += 1
            if cid in sent_at:
                latencies[sec].append((t - sent_at[cid]) * 1000)
        for t in c.welcomed_at[1:]:
            reconnects[min(span - 1, int(t - run.started))] += 1
    return {
        "acks": [(s, acks[s]) for s in range(span)],
        "delivered": [(s, delivered[s]) for s in range(span)],
        "p50": [(s, pct(latencies[s], 50)) for s in range(span) if latencies[s]],
        "p99": [(s, pct(latencies[s], 99)) for s in range(span) if latencies[s]],
        "reconnects": [(s, reconnects[s]) for s in range(span)],
        "unacked": [(t, float(n)) for t, n in run.outstanding],
    }


def summarise(run: Run, contract: str, args: argparse.Namespace) -> dict:
    sent_at = {cid: t for c in run.clients for cid, t in c.sent_at.items()}
    latencies = [
        (t - sent_at[cid]) * 1000 for c in run.clients for t, cid in c.released if cid in sent_at
    ]
    backs = []
    if run.kill_at is not None:
        for c in run.clients:
            drops = [t for t in c.dropped_at if t >= run.kill_at]
            if drops:
                after = [t for t in c.welcomed_at if t > drops[0]]
                backs.append(after[0] - drops[0] if after else float("inf"))
    return {
        "nodes": args.nodes,
        "rooms": args.rooms,
        "clients": len(run.clients),
        "rate_per_client": args.rate,
        "seconds": args.seconds,
        "killed": run.killed or "nothing",
        "kill_at_s": round(run.kill_at - run.started, 1) if run.kill_at else None,
        "sent": sum(len(c.sent_at) for c in run.clients),
        "acked": sum(len(c.acks) for c in run.clients),
        "delivered": len(latencies),
        "latency_p50_ms": round(pct(latencies, 50), 1),
        "latency_p99_ms": round(pct(latencies, 99), 1),
        "reconnects": sum(max(0, len(c.welcomed_at) - 1) for c in run.clients),
        "clients_moved": len(backs),
        "back_after_drop_max_s": round(max(backs), 2) if backs else None,
        "took_s": round(run.ended - run.started, 1),
        "contract": contract,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_report(path: Path, summary: dict, data: dict[str, list[tuple[float, float]]]) -> None:
    mark = summary["kill_at_s"]
    charts = [
        svg_chart(
            "Throughput",
            {"acks/s": data["acks"], "deliveries/s": data["delivered"]},
            unit="/s",
            mark=mark,
        ),
        svg_chart(
            "Delivery latency", {"p50": data["p50"], "p99": data["p99"]}, unit="ms", mark=mark
        ),
        svg_chart(
            "Reconnects", {"welcomes after the first": data["reconnects"]}, unit="/s", mark=mark
        ),
        svg_chart("Unacknowledged messages", {"outboxes": data["unacked"]}, unit="", mark=mark),
    ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in summary.items()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>Huddle load and recovery run</title>"
        "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
        "svg{display:block;margin:1em 0;border:1px solid #ddd}</style>"
        f"<h1>Load and recovery run</h1><table>{rows}</table>{''.join(charts)}"
    )
    path.with_suffix(".json").write_text(json.dumps({"summary": summary, "series": data}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/load_recovery.py")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--per-room", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2.0, help="messages/s per client")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long clients send")
    parser.add_argument("--kill", choices=["none", "node", "redis"], default="none")
    parser.add_argument("--kill-at", type=float, default=10.0, help="seconds into the run")
    parser.add_argument("--redis-down", type=float, default=3.0)
    parser.add_argument(
        "--report", type=Path, default=BASE / "var" / "reports" / "load-recovery.html"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs)")
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 8:
        parser.error("--nodes must be from 1 to 8")
    if args.kill == "node" and args.nodes < 2:
        parser.error("--kill node needs --nodes 2 or more (someone must survive)")
    if not (1 <= args.rooms <= 50 and 1 <= args.per_room <= 50):
        parser.error("--rooms and --per-room must be from 1 to 50")
    if not (0 < args.rate <= 50 and 0 < args.seconds <= 3600):
        parser.error("--rate must be in (0, 50] and --seconds in (0, 3600]")

    run_dir = Path(tempfile.mkdtemp(prefix="load-recovery-"))
    services: list[Service] = []
    # A private Redis and nx-27017 (the nodes' /healthz asks MongoDB too), like
    # the other benches: never a shared server, whatever MONGODB_URI says.
    first_redis, mongo = stores(run_dir)
    redis = [first_redis]
    try:
        redis_url = f"redis://127.0.0.1:{redis[0].port}/0"
        env, cookies, slugs = _huddle_setup(
            run_dir,
            redis_url,
            rooms=args.rooms,
            per_room=args.per_room,
            mongodb_uri=f"mongodb://127.0.0.1:{mongo.port}/",
        )
        env["FRAME_RATE_IP_PER_S"] = env["CONNECT_RATE_IP_PER_S"] = "100000"
        env["CONNECT_RATE_IP_BURST"] = "100000"
        nodes = [cluster.node_service(run_dir, workers=1, env=env) for _ in range(args.nodes)]
        for node in nodes:
            services.append(node.start())
        for node in nodes:
            # /readyz (the balancer's check) is this node alone; /healthz also asks
            # its database, Redis and MongoDB: the run's own, never a shared one.
            if not http_ok(f"http://127.0.0.1:{node.port}/healthz"):
                raise SystemExit(f"node on port {node.port}: /healthz is not ok")
        balancer = cluster.haproxy_service(run_dir, nodes=[n.port for n in nodes]).start()
        services.append(balancer)
        to_send = max(1, int(args.rate * args.seconds))
        clients = [
            ChatClient(
                name=f"c{i}",
                url=f"ws://127.0.0.1:{balancer.port}/ws/rooms/{slugs[i % args.rooms]}/",
                cookie=cookie,
                origin=f"http://127.0.0.1:{balancer.port}",
                room=slugs[i % args.rooms],
                to_send=to_send,
                send_every_s=1 / args.rate,
            )
            for i, cookie in enumerate(cookies)
        ]
        print(
            f"load-recovery: {len(clients)} clients in {args.rooms} rooms, {args.nodes} nodes "
            f"behind HAProxy :{balancer.port}, {args.rate:g} msg/s each for {args.seconds:g}s, "
            f"kill {args.kill}",
            flush=True,
        )
        run = asyncio.run(
            drive(
                clients,
                nodes=nodes,
                redis=redis,
                kill=args.kill,
                kill_at=args.kill_at,
                redis_down=args.redis_down,
                seconds=args.seconds,
                run_dir=run_dir,
            )
        )
        from messaging.models import Message

        problems = []
        for slug in slugs:
            members = [c for c in clients if c.room == slug]
            rows = list(
                Message.objects.filter(room__slug=slug)
                .order_by("seq")
                .values_list("seq", "client_id")
            )
            try:
                check_logs(members, db_rows=rows)
            except AssertionError as exc:
                problems.append(f"{slug}: {exc}")
        contract = "held: 0 lost, 0 duplicated, one order" if not problems else "; ".join(problems)
        summary = summarise(run, contract, args)
        write_report(args.report, summary, series(run))
    finally:
        for service in reversed(services):
            service.stop()
        redis[0].stop()
        mongo.stop()
        if args.keep:
            print(f"run folder kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    for key, value in summary.items():
        print(f"{key:24} {value}")
    print(f"report: {args.report} (and {args.report.with_suffix('.json').name})")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
