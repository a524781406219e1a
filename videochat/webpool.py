"""Several daphne processes on one port: the web tier on every core.

One Python process serves its sockets on one core (the GIL; a chat commit's
database thread shares it too). This binds the port and starts
``--workers`` daphne processes that all accept on it (``daphne --fd``, as
supervisor's fcgi-program does for Channels; each its own SO_REUSEPORT
socket); the kernel hands each new connection to one of them. Everything
between processes already goes through Redis and the database (channel
layer, presence, chat wake-ups per process).

    python -m videochat.webpool --workers 2 --bind 127.0.0.1 --port 8000 -- \
        --websocket-max-message-size 65536 videochat.asgi:application

SIGINT/SIGTERM are passed to every worker. If one worker exits, the others are
stopped and the pool exits with that worker's status, so the supervisor
(devstack supervise, systemd) sees the web tier fail as it would see a single daphne fail.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from videochat.devstack import child_setup
from videochat.envvars import env_bool

STOP_GRACE_S = 10


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m videochat.webpool")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_WORKERS") or 1),
        help="daphne processes (default: $WEB_WORKERS or 1; one per core is the usual)",
    )
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("daphne_args", nargs=argparse.REMAINDER, help="-- then daphne's own")
    args = parser.parse_args(argv)
    rest = args.daphne_args[1:] if args.daphne_args[:1] == ["--"] else args.daphne_args
    if not 1 <= args.workers <= 64:
        parser.error(f"--workers must be from 1 to 64, got {args.workers}")
    if not rest:
        parser.error("give daphne's arguments after --, ending with the application")
    # Behind the load balancer every connection comes from it: without the
    # client address from X-Forwarded-For, all clients would share one
    # per-address rate limit (and the login lockout's address).
    try:
        proxy_headers = env_bool("USE_X_FORWARDED_FOR", default=False)
    except ImproperlyConfigured as exc:
        parser.error(str(exc))
    if proxy_headers and "--proxy-headers" not in rest:
        rest = ["--proxy-headers", *rest]
    return args, rest


def main(argv: list[str] | None = None) -> int:
    args, daphne_args = parse(sys.argv[1:] if argv is None else argv)
    # One listening socket per worker, all on the port with SO_REUSEPORT: the
    # kernel spreads new connections over them by address hash. (One shared
    # socket let whichever worker woke first take most of them: 35 of 40
    # sockets on one worker in bench/chat_fanout.py.)
    listeners = []
    try:
        for _ in range(args.workers):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listeners.append(listener)
            listener.bind((args.bind, args.port))
            listener.listen(1024)
    except OSError as exc:
        print(f"webpool: cannot listen on {args.bind}:{args.port}: {exc}", file=sys.stderr)
        return 1
    daphne = str(Path(sys.executable).parent / "daphne")
    workers = []
    for listener in listeners:
        fd = listener.fileno()
        os.set_inheritable(fd, True)
        workers.append(
            subprocess.Popen(
                [daphne, "--fd", str(fd), *daphne_args],
                pass_fds=(fd,),
                # A pool killed outright (SIGKILL) takes its workers with it.
                preexec_fn=child_setup(signal.SIGTERM),  # noqa: PLW1509
            )
        )
        listener.close()  # the worker holds it now
    stopping = False  # asked to stop (a signal), not a worker's failure

    def relay(signum: int) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        relay(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(
        f"webpool: {args.workers} daphne on {args.bind}:{args.port}: "
        + " ".join(str(w.pid) for w in workers),
        file=sys.stderr,
        flush=True,
    )
    while all(worker.poll() is None for worker in workers):
        time.sleep(0.2)
    first = next(worker for worker in workers if worker.returncode is not None)
    if not stopping:
        print(
            f"webpool: daphne {first.pid} exited with {first.returncode}; stopping the others",
            file=sys.stderr,
            flush=True,
        )
        relay(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    if stopping:
        return 0
    code = first.returncode
    return 128 - code if code < 0 else (code or 1)  # killed by a signal: 128 + its number


if __name__ == "__main__":
    sys.exit(main())
