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

SIGTERM drains: the pool stops listening and sends each worker SIGUSR1
(videochat/node.py), which closes every room socket with 4503 so its client
reconnects, through the load balancer, to another node and resumes there; each
worker stops once its sockets are gone (at most ``DRAIN_TIMEOUT_S``), and the
pool exits 0 when they all have. SIGINT (Ctrl-C) stops the workers at once.
A worker that dies without being asked is started again on the same listening
socket (the pool keeps it open, so connections that reached that socket in the
meantime wait in its backlog rather than being refused): its sockets'
clients reconnect and the kernel spreads them over the live workers. A worker
that keeps dying is restarted with a growing delay. Workers get SIGTERM if
the pool itself is killed, so a dead pool leaves no daphne holding the port.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from videochat.devstack import child_setup
from videochat.envvars import env_bool

STOP_GRACE_S = 10
# A drain: the workers' own limit (videochat.node.DRAIN_TIMEOUT_S) and some slack.
DRAIN_TIMEOUT_S = 30
# Restart delays for a worker that dies: the first restart is immediate; a
# worker that dies again within HEALTHY_S waits twice as long as the last time.
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
HEALTHY_S = 30.0


class Worker:
    """One daphne on one listening socket, restarted when it dies."""

    def __init__(self, fd: int, argv: list[str]) -> None:
        self.fd = fd
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.delay = 0.0  # before the next restart
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            pass_fds=(self.fd,),
            # A pool killed outright (SIGKILL) takes its workers with it.
            preexec_fn=child_setup(signal.SIGTERM),  # noqa: PLW1509
        )
        self.started = time.monotonic()
        self.restart_at = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def died(self) -> None:
        """Schedule a restart, sooner for a worker that had run a while."""
        assert self.proc is not None
        if time.monotonic() - self.started >= HEALTHY_S:
            self.delay = 0.0
        else:
            self.delay = min(RESTART_MAX_S, max(RESTART_FIRST_S, self.delay * 2))
        self.restart_at = time.monotonic() + self.delay
        print(
            f"webpool: daphne {self.proc.pid} exited with {self.proc.returncode}; "
            f"restarting it in {self.delay:.1f}s",
            file=sys.stderr,
            flush=True,
        )


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


def _kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def _wait_for(
    workers: list[Worker], seconds: float, *, then: Callable[[subprocess.Popen], object]
) -> None:
    """Wait up to ``seconds`` in all for the workers to exit; ``then`` each that did not."""
    deadline = time.monotonic() + seconds
    for worker in workers:
        if worker.proc is None:
            continue
        try:
            worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            then(worker.proc)


def main(argv: list[str] | None = None) -> int:
    args, daphne_args = parse(sys.argv[1:] if argv is None else argv)
    # Set before the port is bound: a stop may come as soon as it answers.
    workers: list[Worker] = []
    listeners: list[socket.socket] = []
    stopping = False
    draining = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping, draining
        stopping = True
        draining = signum == signal.SIGTERM
        if draining:
            # New connections are refused from now on (the balancer redispatches
            # them); each worker closes its own copy of the socket as it drains.
            for listener in listeners:
                listener.close()
        for worker in workers:
            if worker.alive():
                assert worker.proc is not None
                worker.proc.send_signal(signal.SIGUSR1 if draining else signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # One listening socket per worker, all on the port with SO_REUSEPORT: the
    # kernel spreads new connections over them by address hash. (One shared
    # socket let whichever worker woke first take most of them: 35 of 40
    # sockets on one worker in bench/chat_fanout.py.)
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
    for listener in listeners:
        # The pool keeps each listening socket open for the worker's successors.
        fd = listener.fileno()
        os.set_inheritable(fd, True)
        workers.append(Worker(fd, [daphne, "--fd", str(fd), *daphne_args]))
    for worker in workers:
        if not stopping:
            worker.start()
    print(
        f"webpool: {args.workers} daphne on {args.bind}:{args.port}: "
        + " ".join(str(w.proc.pid) for w in workers if w.proc),
        file=sys.stderr,
        flush=True,
    )
    while not stopping:
        now = time.monotonic()
        for worker in workers:
            if worker.restart_at is not None:
                if now >= worker.restart_at and not stopping:
                    worker.start()
                    assert worker.proc is not None
                    print(f"webpool: started daphne {worker.proc.pid}", file=sys.stderr, flush=True)
            elif not worker.alive():
                worker.died()
        time.sleep(0.1)
    if draining:
        print("webpool: draining", file=sys.stderr, flush=True)
        _wait_for(workers, DRAIN_TIMEOUT_S, then=lambda proc: proc.terminate())
    _wait_for(workers, STOP_GRACE_S, then=_kill)
    for listener in listeners:
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
