"""Start the private services the product needs, run a command, stop them.

``python -m videochat.devstack exec -- CMD ...`` starts a private redis-server
and the nx-27017 MongoDB-protocol server (unless ``REDIS_URL`` /
``MONGODB_URI`` are set), exports their URLs, runs CMD and stops everything on
exit or Ctrl-C. ``up`` does the same around the whole product (daphne, Celery,
rq) for the Quick start. Test fixtures use the same functions to start private
servers they may kill.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(
    port: int, *, timeout: float = 15.0, proc: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            argv = proc.args if isinstance(proc.args, list | tuple) else [proc.args]
            name = os.fsdecode(argv[0])
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Service:
    name: str
    port: int
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def start(self) -> Service:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,  # Ctrl-C is ours to relay, in order
        )
        log.close()
        try:
            wait_for_port(self.port, proc=self.proc)
        except (RuntimeError, TimeoutError):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} failed to start; its log says:\n{tail}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def redis_service(run_dir: Path, port: int | None = None, *, persist: bool = True) -> Service:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit(
            "redis-server is not installed: run bin/bootstrap (apt-get install redis-server) "
            "or set REDIS_URL to a running Redis."
        )
    port = port or free_port()
    data = run_dir / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--protected-mode",
        "yes",
    ]
    return Service("redis", port, argv, run_dir / f"redis-{port}.log")


def mongo_service(run_dir: Path, port: int | None = None) -> Service:
    exe = shutil.which("nx-27017") or str(Path(sys.executable).parent / "nx-27017")
    if not Path(exe).exists():
        raise SystemExit(
            "nx-27017 is not installed: run bin/bootstrap (pip install -r requirements.txt)"
        )
    port = port or free_port()
    data = run_dir / f"mongo-{port}"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        exe,
        "--host",
        "127.0.0.1",
        "-p",
        str(port),
        "--data-dir",
        str(data),
        "--log-file",
        str(run_dir / f"mongo-{port}.server.log"),
        "--pid-file",
        str(run_dir / f"mongo-{port}.pid"),
    ]
    return Service("mongodb", port, argv, run_dir / f"mongo-{port}.log")


def celery_worker_argv(*, concurrency: int, loglevel: str, name: str | None = None) -> list[str]:
    """A ``celery -A videochat worker`` (prefork) as the tests and benchmarks run it:
    no gossip, mingle or heartbeat, which only slow start-up on a single broker."""
    argv = [
        str(Path(sys.executable).parent / "celery"),
        *("-A", "videochat", "worker", "--pool", "prefork", "--concurrency", str(concurrency)),
        *("--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", loglevel),
    ]
    return [*argv, "-n", f"{name}@%h"] if name else argv


def daphne_service(
    run_dir: Path,
    port: int | None = None,
    *,
    app: str = "videochat.asgi:application",
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> Service:
    """daphne as the Procfile runs it (same message-size cap), on ``port``.

    ``workers`` > 1: that many daphne processes on the one port
    (videochat.webpool, the Procfile's ``WEB_WORKERS``).
    """
    port = port or free_port()
    daphne_args = ["--websocket-max-message-size", "65536", app]
    if workers > 1:
        argv = [
            sys.executable,
            "-m",
            "videochat.webpool",
            "--workers",
            str(workers),
            "--port",
            str(port),
            "--",
            *daphne_args,
        ]
    else:
        daphne = str(Path(sys.executable).parent / "daphne")
        argv = [daphne, "-b", "127.0.0.1", "-p", str(port), *daphne_args]
    return Service(f"daphne-{app}", port, argv, run_dir / f"daphne-{port}.log", env=env or {})


class Stack:
    """The private services for one run, started only where no URL was given."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.services: list[Service] = []

    def start(self) -> dict[str, str]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env: dict[str, str] = {"VIDEOCHAT_RUN_DIR": str(self.run_dir)}
        if not os.environ.get("REDIS_URL"):
            redis = redis_service(self.run_dir).start()
            self.services.append(redis)
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
            print(f"devstack: private redis-server on {env['REDIS_URL']}", flush=True)
        if not os.environ.get("MONGODB_URI"):
            mongo = mongo_service(self.run_dir).start()
            self.services.append(mongo)
            env["MONGODB_URI"] = f"mongodb://127.0.0.1:{mongo.port}/"
            print(f"devstack: private MongoDB-protocol server on {env['MONGODB_URI']}", flush=True)
        os.environ.update(env)
        return env

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()


def _run(argv: list[str]) -> int:
    """Run a child in its own process group; relay SIGINT/SIGTERM once."""
    child = subprocess.Popen(argv, start_new_session=True)

    def relay(signum, _frame):
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, relay)
    signal.signal(signal.SIGTERM, relay)
    try:
        return child.wait()
    finally:
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videochat.devstack")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="folder for service data and logs (default: var/run, or a "
        "fresh temporary folder with --fresh)",
    )
    parser.add_argument("--fresh", action="store_true", help="use a new empty run folder")
    parser.add_argument("command", choices=["exec"])
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not cmd:
        parser.error("exec needs a command after --")
    if args.fresh:
        run_dir = Path(tempfile.mkdtemp(prefix="videochat-run-"))
    else:
        run_dir = args.run_dir or BASE_DIR / "var" / "run"
    stack = Stack(run_dir.resolve())
    try:
        stack.start()
        return _run(cmd)
    finally:
        stack.stop()
        if args.fresh:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
