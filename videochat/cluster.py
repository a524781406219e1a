"""Several web nodes behind HAProxy on one machine: the scale-out topology, locally.

    python -m videochat.devstack exec -- python -m videochat.cluster --nodes 2 --port 8000

starts ``--nodes`` web nodes (each a ``videochat.webpool`` with ``WEB_WORKERS``
daphne processes, on a free port of its own, sharing the database and the
Redis and MongoDB of the environment) and an HAProxy (Debian ``haproxy``) on
``--port`` in front of them. HAProxy asks each node's ``/readyz`` every second
(videochat/node.py: the node itself, not the stores all nodes share), takes a
node out after three failed checks, and sends a connection that fails to connect
to another node (``retries``/``redispatch``), so when a node dies its clients
reconnect to a live one within a second or two. WebSocket upgrades pass
through (``timeout tunnel``). HAProxy overwrites ``X-Forwarded-For`` with the
address it sees, and the nodes run with ``USE_X_FORWARDED_FOR=1``, so
per-address limits see each client.

Ctrl-C or SIGTERM stops HAProxy, then the nodes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from videochat.devstack import BASE_DIR, Service, free_port, http_ok

HAPROXY_CONFIG = """\
global
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # An upgraded WebSocket lives as long as its heartbeats keep it alive.
    timeout tunnel 1h
    timeout http-request 10s
    # A connection refused by a dead node is tried on another.
    retries 2
    option redispatch 1

frontend web
    bind {bind}:{port}
    # Set, never append: the nodes take the first entry as the client's address.
    http-request set-header X-Forwarded-For %[src]
    default_backend nodes

backend nodes
    balance leastconn
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    # A refused connection fails a check at once; a slow answer (a busy node)
    # gets 3 s, and three failures in a row, before the node is taken out.
    timeout check 3s
    default-server inter 1s fastinter 500ms fall 3 rise 2 on-marked-down shutdown-sessions
{servers}
"""


def haproxy_config(*, bind: str, port: int, nodes: list[int]) -> str:
    servers = "\n".join(
        f"    server node{i} 127.0.0.1:{node_port} check" for i, node_port in enumerate(nodes, 1)
    )
    return HAPROXY_CONFIG.format(bind=bind, port=port, servers=servers)


def haproxy_service(
    run_dir: Path, *, nodes: list[int], port: int | None = None, bind: str = "127.0.0.1"
) -> Service:
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(exe).exists():
        raise SystemExit(
            "haproxy is not installed: run bin/bootstrap --test (apt-get install haproxy)"
        )
    port = port or free_port()
    config = run_dir / f"haproxy-{port}.cfg"
    config.write_text(haproxy_config(bind=bind, port=port, nodes=nodes))
    # -db: stay in the foreground; -W would fork a master we do not need.
    return Service(
        "haproxy", port, [exe, "-db", "-f", str(config)], run_dir / f"haproxy-{port}.log"
    )


def node_service(run_dir: Path, *, workers: int, env: dict[str, str] | None = None) -> Service:
    """One web node as the Procfile runs it: a webpool (it heals, and drains on
    SIGTERM) on a free port, trusting the balancer's X-Forwarded-For."""
    port = free_port()
    argv = [
        sys.executable,
        *("-m", "videochat.webpool", "--workers", str(workers), "--port", str(port), "--"),
        *("--websocket-max-message-size", "65536", "videochat.asgi:application"),
    ]
    env = {"USE_X_FORWARDED_FOR": "1", **(env or {})}
    return Service(
        f"node-{port}",
        port,
        argv,
        run_dir / f"node-{port}.log",
        env=env,
        # Ready when a worker answers, not when the pool's port accepts.
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/readyz"),
        ready_timeout=60,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videochat.cluster")
    parser.add_argument("--nodes", type=int, default=2, help="web nodes (default 2)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_WORKERS") or 1),
        help="daphne processes per node (default: $WEB_WORKERS or 1)",
    )
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT") or 8000))
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 16:
        parser.error(f"--nodes must be from 1 to 16, got {args.nodes}")
    if not 1 <= args.workers <= 64:
        parser.error(f"--workers must be from 1 to 64, got {args.workers}")
    if not os.environ.get("REDIS_URL") and not os.environ.get("REDIS_SENTINELS"):
        parser.error(
            "neither REDIS_URL nor REDIS_SENTINELS is set: run it under the dev stack "
            "(python -m videochat.devstack exec -- python -m videochat.cluster ...)"
        )
    run_dir = Path(os.environ.get("VIDEOCHAT_RUN_DIR") or BASE_DIR / "var" / "run")
    run_dir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    services: list[Service] = []
    try:
        for _ in range(args.nodes):
            services.append(node_service(run_dir, workers=args.workers).start())
        nodes = [s.port for s in services if s.port is not None]
        services.append(
            haproxy_service(run_dir, nodes=nodes, port=args.port, bind=args.bind).start()
        )
        print(
            f"cluster: {args.nodes} nodes ({', '.join(str(p) for p in nodes)}) behind HAProxy "
            f"on http://{args.bind}:{args.port}",
            flush=True,
        )
        while not stopping:
            for service in services:
                if service.proc is not None and service.proc.poll() is not None:
                    print(f"cluster: {service.name} on {service.port} exited", flush=True)
                    service.proc = None
            time.sleep(0.5)
    finally:
        for service in reversed(services):
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
