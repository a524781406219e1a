"""Start the private services the product needs, run a command, stop them.

``python -m videochat.devstack exec -- CMD ...`` starts a private redis-server
and the nx-27017 MongoDB-protocol server (unless ``REDIS_URL`` /
``MONGODB_URI`` are set; with ``--postgres`` also a throw-away PostgreSQL
cluster), exports their URLs, runs CMD and stops everything when CMD ends.
``bin/up`` runs ``bin/serve`` this way, which runs the Procfile under
``python -m videochat.devstack supervise``. Test fixtures use the same
functions to start private servers they may kill.

What it promises:

- **Data stays.** Without ``--fresh``, Redis (AOF), MongoDB and PostgreSQL keep
  their data in ``var/data/<service>`` (``--data-dir``), whatever port they get;
  a restart, a crash or a reboot finds the queued work and the dead letters
  again. One devstack at a time uses a data folder (a lock, held by its
  servers too, so a new stack waits until the old servers are gone).
  ``--fresh`` uses a new temporary folder and removes it at the end (tests).
- **Nothing left behind.** Every process it starts runs in its own session
  with a parent-death signal (``PR_SET_PDEATHSIG``): if devstack or the
  supervisor is killed, even with SIGKILL, its children are told to stop and
  stop their own children. Devstack itself stops when its parent dies.
- **Supervision.** A server or Procfile process that dies is reaped, logged and
  started again with exponential backoff (1 s doubling to 30 s; reset after it
  has run 30 s); a stale pid file is removed first.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BASE_DIR = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
_PR_SET_PDEATHSIG = 1
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
STOP_GRACE_S = 10.0
QUIET_S = 1.5  # supervise: no output for this long before the ready message


def log(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def timeout_factor() -> float:
    """``TEST_TIMEOUT_FACTOR`` (default 1): every wait of the tests and of
    readiness checks is multiplied by it, for slow or loaded machines."""
    raw = os.environ.get("TEST_TIMEOUT_FACTOR", "").strip() or "1"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 100:
        raise SystemExit(f"TEST_TIMEOUT_FACTOR={raw!r} must be a number in (0, 100]")
    return value


def scaled(seconds: float) -> float:
    return seconds * timeout_factor()


def set_parent_death_signal(sig: int) -> None:
    """Linux: deliver ``sig`` to this process when the thread that started it exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def child_setup(
    sig: int = signal.SIGTERM, user: str | None = None
) -> Callable[[], None]:  # pragma: no cover - runs in the child between fork and exec
    """preexec_fn: (drop to ``user``), then die with ``sig`` when the parent dies.

    Linux sends it when the *thread* that started the child exits: start a
    long-lived process from the main thread or one that outlives it (asyncio's
    default executor threads do).
    """
    parent = os.getpid()

    def setup() -> None:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)  # before prctl: a credential change clears it
        set_parent_death_signal(sig)
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), sig)

    return setup


def django_on_sqlite(db_path: Path) -> None:
    """Set Django up in this process on a fresh, migrated SQLite file: for the
    product's own tools that run it outside pytest (bin/lab, bench/call_join.py)."""
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        check=True,
    )
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, *, timeout: float = 15.0, proc: subprocess.Popen | None = None
) -> None:
    wait_ready(lambda: port_open(port), what=f"127.0.0.1:{port}", timeout=timeout, proc=proc)


def wait_ready(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float = 15.0,
    proc: subprocess.Popen | None = None,
) -> None:
    """Poll ``ready`` until true; ``timeout`` is scaled by TEST_TIMEOUT_FACTOR."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        if proc is not None and proc.poll() is not None:
            argv = proc.args if isinstance(proc.args, list | tuple) else [proc.args]
            name = os.fsdecode(argv[0])
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready")
        if ready():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {scaled(timeout):.0f}s")
        time.sleep(0.05)


# --- readiness: the service answers, not only a port that accepts ------------------


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def mongo_answers(port: int) -> bool:
    if not port_open(port):
        return False
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient = MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=1000)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def postgres_answers(port: int) -> bool:
    import psycopg

    try:
        psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=1"
        ).close()
        return True
    except psycopg.Error:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own URL
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


# --- one supervised process ----------------------------------------------------------


@dataclass
class Service:
    """A process devstack starts, checks for readiness, restarts and stops.

    ``port``: readiness is "the port accepts" unless ``ready`` is given.
    ``log_path``: output goes there; without it, lines go to our stdout
    prefixed with the name (Procfile processes).
    """

    name: str
    port: int | None
    argv: list[str]
    log_path: Path | None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    ready: Callable[[], bool] | None = None
    pid_file: Path | None = None
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    pass_fds: tuple[int, ...] = ()
    cwd: Path | None = None
    ready_timeout: float = 15.0
    started_at: float = 0.0
    backoff: float = RESTART_MIN_S
    restart_at: float | None = None
    restarts: int = 0
    last_output: float = 0.0

    def is_ready(self) -> bool:
        if self.ready is not None:
            return self.ready()
        return self.port is None or port_open(self.port)

    def spawn(self) -> None:
        out: IO[bytes] | int
        if self.log_path is not None:
            out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        else:
            out = subprocess.PIPE
        self.proc = subprocess.Popen(
            self.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,  # signals are ours to relay, in order
            preexec_fn=child_setup(self.stop_signal, self.user),  # noqa: PLW1509
            pass_fds=self.pass_fds,
        )
        self.started_at = time.monotonic()
        if self.log_path is not None:
            out.close()  # type: ignore[union-attr]
        else:
            threading.Thread(target=self._relay_output, args=(self.proc,), daemon=True).start()

    def _relay_output(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.last_output = time.monotonic()
            sys.stdout.write(f"{self.name:>7} | {line.decode(errors='replace')}")
            sys.stdout.flush()

    def start(self) -> Service:
        self.spawn()
        if self.ready is None and self.port is None:
            return self  # nothing to wait for (a Procfile process)
        try:
            wait_ready(self.is_ready, what=self.name, timeout=self.ready_timeout, proc=self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            tail = ""
            if self.log_path is not None and self.log_path.exists():
                tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"{self.name} failed to start ({exc}); its log says:\n{tail}"
            ) from None
        return self

    def check(self) -> None:
        """Reap a dead process and start it again after a backoff (call it often)."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now < self.restart_at:
                return
            self.restart_at = None
            self.restarts += 1
            try:
                self.start()
            except RuntimeError as exc:
                log(f"{self.name} did not come back: {exc}")
                self._schedule(now)
            else:
                log(f"{self.name} restarted (pid {self.proc.pid if self.proc else '?'})")
            return
        if self.proc is None or self.proc.poll() is None:
            if self.proc is not None and now - self.started_at > RESTART_MAX_S:
                self.backoff = RESTART_MIN_S  # it has run a while: a new crash starts over
            return
        log(f"{self.name} (pid {self.proc.pid}) exited with {self.proc.returncode}")
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        if self.pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()  # stale: it would block the restart ("already running")
        log(f"restarting {self.name} in {self.backoff:.0f}s")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, RESTART_MAX_S)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, sig: int | None = None, timeout: float = STOP_GRACE_S) -> None:
        self.restart_at = None
        if self.proc is None or self.proc.poll() is not None:
            return
        if sig is not None and sig != self.stop_signal:
            self.signal(sig)
        stop_all([self], timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """A live (not zombie) process is left in process group ``pgid``: e.g. rq's
    scheduler, which outlives its worker by a moment and still needs Redis."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def stop_all(services: list[Service], timeout: float = STOP_GRACE_S) -> None:
    """Signal every service at once, then wait for each one's whole process
    group; SIGKILL what outlives ``timeout``."""
    for service in services:
        service.restart_at = None
        service.signal(service.stop_signal)
    deadline = time.monotonic() + timeout
    for service in services:
        if service.proc is None:
            continue
        try:
            service.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            while group_alive(service.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        except subprocess.TimeoutExpired:
            pass
        if service.proc.poll() is None or group_alive(service.proc.pid):
            log(f"{service.name} ignored {signal.Signals(service.stop_signal).name}; SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.proc.pid, signal.SIGKILL)
            service.proc.wait()


# --- the servers ---------------------------------------------------------------------


def redis_service(
    run_dir: Path,
    port: int | None = None,
    *,
    persist: bool = True,
    data_dir: Path | None = None,
    replica_of: int | None = None,
    name: str | None = None,
) -> Service:
    """A private redis-server. ``replica_of``: a replica of the server on that port,
    started from a configuration file of its own, which Redis rewrites when a
    sentinel changes its role (so a restarted server keeps the role it was given)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit(
            "redis-server is not installed: run bin/bootstrap (apt-get install redis-server) "
            "or set REDIS_URL to a running Redis."
        )
    port = port or free_port()
    data = data_dir or run_dir / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    options = {
        "port": str(port),
        "bind": "127.0.0.1",
        "dir": str(data),
        "save": '""',
        "appendonly": "yes" if persist else "no",
        "protected-mode": "yes",
    }
    if name is None and replica_of is None:
        argv = [exe]
        for key, value in options.items():
            argv += [f"--{key}", "" if value == '""' else value]
        name = "redis" if data_dir else f"redis-{port}"
        service = Service("redis", port, argv, run_dir / f"{name}.log")
    else:
        # A Sentinel group's data node: its options in a file of its own, since a
        # sentinel changes a server's role with REPLICAOF + CONFIG REWRITE.
        name = name or f"redis-{port}"
        config = run_dir / f"{name}.conf"
        # The first full copy to a replica starts at once: by default a primary waits
        # 5 s for more replicas to share it, and a primary that died in those seconds
        # was failed over to a replica holding nothing (tests/test_celery_failover.py).
        lines = [f"{k} {v}" for k, v in options.items()] + ["repl-diskless-sync-delay 0"]
        if replica_of is not None:
            lines.append(f"replicaof 127.0.0.1 {replica_of}")
        config.write_text("\n".join(lines) + "\n")
        service = Service(name, port, [exe, str(config)], run_dir / f"{name}.log")
    service.ready = lambda: redis_answers(port)
    return service


def sentinel_service(
    run_dir: Path,
    *,
    master: str,
    primary_port: int,
    quorum: int,
    port: int | None = None,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 10000,
) -> Service:
    """A Redis Sentinel (Debian ``redis-sentinel``; ``redis-server --sentinel`` is the
    same program) watching the primary on ``primary_port`` under the name ``master``.
    Its configuration file is its own: Sentinel rewrites it with what it learns."""
    exe = shutil.which("redis-sentinel")
    argv_tail: list[str] = []
    if exe is None:
        exe = shutil.which("redis-server")
        argv_tail = ["--sentinel"]
    if exe is None:
        raise SystemExit(
            "redis-sentinel is not installed: run bin/bootstrap (apt-get install redis-sentinel)"
        )
    port = port or free_port()
    config = run_dir / f"sentinel-{port}.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {run_dir}\n"
        f"sentinel monitor {master} 127.0.0.1 {primary_port} {quorum}\n"
        f"sentinel down-after-milliseconds {master} {down_after_ms}\n"
        f"sentinel failover-timeout {master} {failover_timeout_ms}\n"
        f"sentinel parallel-syncs {master} 1\n"
    )
    service = Service(
        f"sentinel-{port}", port, [exe, str(config), *argv_tail], run_dir / f"sentinel-{port}.log"
    )
    service.ready = lambda: redis_answers(port)
    return service


SENTINEL_MASTER = "huddle"


@dataclass
class SentinelGroup:
    """A private primary, one replica and ``len(sentinels)`` sentinels (quorum: a
    majority). ``env``: the settings that point the product at it."""

    primary: Service
    replica: Service
    sentinels: list[Service]
    master: str = SENTINEL_MASTER

    @property
    def services(self) -> list[Service]:
        return [self.primary, self.replica, *self.sentinels]

    @property
    def env(self) -> dict[str, str]:
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "REDIS_SENTINEL_MASTER": self.master,
        }

    def _ask(self, sentinel: Service, *command: str) -> Any:
        """One command to one sentinel; None if it does not answer."""
        import redis

        client = redis.Redis(port=sentinel.port or 0, socket_timeout=1, decode_responses=True)
        try:
            return client.execute_command(*command)
        except redis.RedisError:
            return None
        finally:
            client.close()

    def primary_port(self) -> int | None:
        """The port the sentinels name now (None: none of them answers)."""
        for sentinel in self.sentinels:
            host_port = self._ask(sentinel, "SENTINEL GET-MASTER-ADDR-BY-NAME", self.master)
            if host_port:
                return int(host_port[1])
        return None

    def replica_synced(self) -> bool:
        """The replica holds its full copy of the primary and follows its writes."""
        import redis

        client = redis.Redis(port=self.replica.port or 0, socket_timeout=1, decode_responses=True)
        try:
            info = client.info("replication")
        except redis.RedisError:
            return False
        finally:
            client.close()
        return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")

    def agreed(self) -> bool:
        """Every sentinel knows the others and the replica (a failover needs both)."""
        for sentinel in self.sentinels:
            state = self._ask(sentinel, "SENTINEL MASTER", self.master)
            if not isinstance(state, dict):
                return False
            if int(state.get("num-other-sentinels", 0)) < len(self.sentinels) - 1:
                return False
            if int(state.get("num-slaves", 0)) < 1:
                return False
        return True


def sentinel_group(
    run_dir: Path,
    data_dir: Path,
    *,
    sentinels: int = 3,
    persist: bool = True,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 10000,
) -> SentinelGroup:
    """Not started: start the services in order (``start_sentinel_group``)."""
    if not 1 <= sentinels <= 3:
        raise SystemExit(f"--sentinels must be 1, 2 or 3, got {sentinels}")
    primary = redis_service(
        run_dir, persist=persist, data_dir=data_dir / "a", name="redis-sentinel-a"
    )
    assert primary.port is not None
    replica = redis_service(
        run_dir,
        persist=persist,
        data_dir=data_dir / "b",
        replica_of=primary.port,
        name="redis-sentinel-b",
    )
    quorum = sentinels // 2 + 1
    watchers = [
        sentinel_service(
            run_dir,
            master=SENTINEL_MASTER,
            primary_port=primary.port,
            quorum=quorum,
            down_after_ms=down_after_ms,
            failover_timeout_ms=failover_timeout_ms,
        )
        for _ in range(sentinels)
    ]
    return SentinelGroup(primary, replica, watchers)


def wait_sentinel_group(group: SentinelGroup, timeout: float = 30) -> None:
    """Until every sentinel has found the others and the replica (hello messages
    go every 2 s), so that killing the primary right away is failed over, and the
    replica has its full copy of the primary, so that what is written from then on
    reaches it (a replica still syncing is promoted empty: everything lost)."""
    wait_ready(group.agreed, what="the sentinels' agreement", timeout=timeout)
    wait_ready(group.replica_synced, what="the replica's first sync", timeout=timeout)


def mongo_service(
    run_dir: Path, port: int | None = None, *, data_dir: Path | None = None
) -> Service:
    exe = shutil.which("nx-27017") or str(Path(sys.executable).parent / "nx-27017")
    if not Path(exe).exists():
        raise SystemExit(
            "nx-27017 is not installed: run bin/bootstrap (pip install -r requirements.txt)"
        )
    port = port or free_port()
    data = data_dir or run_dir / f"mongo-{port}"
    data.mkdir(parents=True, exist_ok=True)
    name = "mongo" if data_dir else f"mongo-{port}"
    pid_file = run_dir / f"{name}.pid"
    argv = [
        exe,
        *("--host", "127.0.0.1", "-p", str(port), "--data-dir", str(data)),
        *("--log-file", str(run_dir / f"{name}.server.log"), "--pid-file", str(pid_file)),
    ]
    service = Service("mongodb", port, argv, run_dir / f"{name}.log", pid_file=pid_file)
    service.ready = lambda: mongo_answers(port)
    return service


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: run it as ``postgres`` (or nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise SystemExit("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


def postgres_service(
    run_dir: Path, data_dir: Path, port: int | None = None, *, durable: bool = True
) -> Service:
    """A private PostgreSQL 15 cluster in ``data_dir`` (initdb on first use),
    trust auth for user ``postgres`` on 127.0.0.1 only. ``durable=False``
    (tests): no fsync."""
    initdb, postgres = PG_BIN / "initdb", PG_BIN / "postgres"
    if not postgres.exists():
        raise SystemExit(
            f"{postgres} is missing: run bin/bootstrap --test (apt-get install postgresql) "
            "or set POSTGRES_TEST_URL to a running PostgreSQL."
        )
    user = _unprivileged_user()
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        # The folders above the cluster must be traversable (not readable) by it,
        # up to the stack's own top folder (a 0700 temporary folder with --fresh).
        top = Path(os.path.commonpath([run_dir, data_dir]))
        for folder in [run_dir, *data_dir.parents]:
            if folder.is_relative_to(top) and folder.stat().st_uid == os.geteuid():
                folder.chmod(folder.stat().st_mode | 0o111)
    data_dir.chmod(0o700)
    if not (data_dir / "PG_VERSION").exists():
        result = subprocess.run(
            [str(initdb), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            capture_output=True,
            text=True,
            preexec_fn=child_setup(signal.SIGKILL, user),  # noqa: PLW1509
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")
    argv = [
        str(postgres),
        *("-D", str(data_dir), "-p", str(port), "-h", "127.0.0.1", "-k", ""),
        *("-c", "max_connections=200"),
    ]
    if not durable:
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    service = Service(
        "postgres",
        port,
        argv,
        run_dir / "postgres.log",
        user=user,
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM waits for every client
        pid_file=None,
        ready_timeout=30,
    )
    service.ready = lambda: postgres_answers(port)
    return service


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
    (videochat.webpool, the Procfile's ``WEB_WORKERS``). Ready when the
    product's ``/healthz`` answers 200 (database, Redis and MongoDB reachable);
    another ``app`` is ready when its port accepts.
    """
    port = port or free_port()
    daphne_args = ["--websocket-max-message-size", "65536", app]
    if workers > 1:
        argv = [
            sys.executable,
            *("-m", "videochat.webpool", "--workers", str(workers), "--port", str(port), "--"),
            *daphne_args,
        ]
    else:
        daphne = str(Path(sys.executable).parent / "daphne")
        argv = [daphne, "-b", "127.0.0.1", "-p", str(port), *daphne_args]
    service = Service(
        f"daphne-{app}", port, argv, run_dir / f"daphne-{port}.log", env=env or {}, ready_timeout=30
    )
    if app == "videochat.asgi:application":
        service.ready = lambda: http_ok(f"http://127.0.0.1:{port}/healthz")
    return service


RELAY_PORTS = 50  # coturn_service's relay port range (49152-59151 in 200 slices)


def coturn_service(run_dir: Path, secret: str) -> Service:
    """coturn on loopback with TURN REST credentials (``--use-auth-secret``), UDP only,
    relaying between loopback peers; for the relay-only call tests and the network lab."""
    exe = shutil.which("turnserver")
    if exe is None:
        raise RuntimeError("turnserver (coturn) is missing: run bin/bootstrap --test")
    port = free_port()
    # One relay port per TURN allocation. Every ICE generation of a browser whose
    # configuration names TURN allocates one (policy "all" too), and allocations of a
    # generation left behind during an outage stay until coturn times them out (their
    # release is dropped with the rest): a run of the relay-switch test made 7-10
    # allocations, up to 8 alive at once. With 10 ports a relay-only restart can meet
    # "508 Insufficient Capacity" and get no relay candidate at all (seen with 2), so 50.
    relay_min = 49152 + (port % 200) * RELAY_PORTS
    argv = [
        exe,
        "-n",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--min-port={relay_min}",
        f"--max-port={relay_min + RELAY_PORTS - 1}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        "--realm=huddle.test",
        "--allow-loopback-peers",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--fingerprint",
        "--log-file=stdout",
        "--simple-log",
        # Keep its state in our run folder, not /var (parallel runs, no root).
        f"--pidfile={run_dir / f'coturn-{port}.pid'}",
        f"--userdb={run_dir / f'coturn-{port}.sqlite'}",
    ]
    return Service("coturn", port, argv, run_dir / f"coturn-{port}.log")


# Headless Chromium as the browser tests and the network lab launch it (fake media).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


# --- the stack -------------------------------------------------------------------------


class Stack:
    """The private services for one run, started only where no URL was given.

    ``data_dir`` holds each server's data in a folder named after the server
    (never after its port), so a restart finds it again.
    """

    def __init__(self, run_dir: Path, data_dir: Path, *, postgres: bool = False) -> None:
        self.run_dir = run_dir
        self.data_dir = data_dir
        self.postgres = postgres
        self.sentinels = 0  # > 0: a Sentinel group instead of one redis-server
        self.durable = True
        self.services: list[Service] = []
        self._lock: int | None = None

    def _take_lock(self) -> int:
        """One stack per data folder. The servers inherit the lock, so it is
        free only once the last of them has exited (after a SIGKILLed stack)."""
        path = self.data_dir / ".devstack.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + scaled(20)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise SystemExit(
                        f"devstack: {self.data_dir} is in use by another devstack or its "
                        "servers; stop it, or give another --data-dir"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def start(self) -> dict[str, str]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = self._take_lock()
        env: dict[str, str] = {"VIDEOCHAT_RUN_DIR": str(self.run_dir)}
        try:
            if self.sentinels:
                group = sentinel_group(
                    self.run_dir,
                    self.data_dir / "redis-sentinel",
                    sentinels=self.sentinels,
                    persist=self.durable,
                )
                for service in group.services:
                    self._start(service)
                wait_sentinel_group(group)
                env.update(group.env)
                log(
                    f"private Redis primary on {group.primary.port}, replica on "
                    f"{group.replica.port}, {self.sentinels} sentinel(s) "
                    f"({env['REDIS_SENTINELS']}, quorum {self.sentinels // 2 + 1})"
                )
            elif not os.environ.get("REDIS_URL") and not os.environ.get("REDIS_SENTINELS"):
                redis = redis_service(self.run_dir, data_dir=self.data_dir / "redis")
                self._start(redis)
                env["REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
                log(f"private redis-server on {env['REDIS_URL']} (data: {self.data_dir}/redis)")
            if not os.environ.get("MONGODB_URI"):
                mongo = mongo_service(self.run_dir, data_dir=self.data_dir / "mongo")
                self._start(mongo)
                env["MONGODB_URI"] = f"mongodb://127.0.0.1:{mongo.port}/"
                log(f"private MongoDB-protocol server on {env['MONGODB_URI']}")
            if self.postgres:
                pg = postgres_service(
                    self.run_dir, self.data_dir / "postgres", durable=self.durable
                )
                self._start(pg)
                env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{pg.port}/postgres"
                log(f"private PostgreSQL on {env['DATABASE_URL']}")
        except BaseException:
            self.stop()
            raise
        os.environ.update(env)
        # Where an operator (or a test) finds the current ports: they change per start.
        (self.run_dir / "services.env").write_text(
            "".join(f"{k}={v}\n" for k, v in sorted(env.items()))
        )
        return env

    def _start(self, service: Service) -> None:
        assert self._lock is not None
        service.pass_fds = (self._lock,)
        if service.pid_file is not None:
            # We hold the data lock, so the servers of any earlier stack are gone: a
            # pid file left by a crash or a power cut is stale (its pid may even be
            # alive again as another process, and nx-27017 would refuse to start).
            service.pid_file.unlink(missing_ok=True)
        self.services.append(service)
        service.start()

    def check(self) -> None:
        for service in self.services:
            service.check()

    def stop(self) -> None:
        stop_all(list(reversed(self.services)))
        self.services.clear()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _run(argv: list[str], stack: Stack) -> int:
    """Run CMD in its own process group, relay SIGINT/SIGTERM to it, and keep
    the stack's servers running (restarted if they die) until CMD ends."""
    child = subprocess.Popen(
        argv,
        start_new_session=True,
        preexec_fn=child_setup(signal.SIGTERM),  # noqa: PLW1509
    )

    def relay(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)

    signal.signal(signal.SIGINT, relay)
    signal.signal(signal.SIGTERM, relay)
    try:
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                stack.check()
    finally:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)


# --- supervise: the Procfile without honcho ------------------------------------------

_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def read_procfile(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if match is None:
            raise SystemExit(f"{path}:{number}: not a 'name: command' line: {line!r}")
        entries[match[1]] = match[2]
    if not entries:
        raise SystemExit(f"{path}: no processes")
    return entries


def supervise(
    procfile: Path, *, ready_url: str | None = None, ready_message: str | None = None
) -> int:
    """Run every Procfile line (through ``sh -c`` for ``${VAR:-default}``),
    restart one that dies, stop all on SIGINT/SIGTERM. Prints ``ready_message``
    once ``ready_url`` answers 200."""
    services = [
        Service(name, None, ["/bin/sh", "-c", f"exec {command}"], None, cwd=BASE_DIR)
        for name, command in read_procfile(procfile).items()
    ]
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for service in services:
        service.spawn()
        log(f"started {service.name} (pid {service.proc.pid if service.proc else '?'})")
    announced = ready_url is None
    give_up_at = time.monotonic() + scaled(60)
    try:
        while not stopping.wait(0.2):
            for service in services:
                service.check()
            if announced:
                continue
            now = time.monotonic()
            # Shown last: once the web tier answers and every process has had
            # its say (start-up banners), or after a minute whatever they print.
            quiet = all(now - max(s.started_at, s.last_output) > QUIET_S for s in services)
            if (quiet or now > give_up_at) and http_ok(ready_url or ""):
                announced = True
                print(ready_message or f"ready: {ready_url}", flush=True)
    finally:
        log("stopping " + ", ".join(s.name for s in services))
        stop_all(services)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videochat.devstack")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="folder for logs, pid files and services.env (default: var/run, or a "
        "fresh temporary folder with --fresh)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder for the servers' data, kept across restarts (default: var/data, "
        "or inside the temporary folder with --fresh)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="new empty temporary folders, removed at the end"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also a private PostgreSQL cluster (sets DATABASE_URL)",
    )
    parser.add_argument(
        "--sentinel",
        action="store_true",
        help="Redis as a primary, a replica and sentinels (sets REDIS_SENTINELS and "
        "REDIS_SENTINEL_MASTER instead of REDIS_URL)",
    )
    parser.add_argument(
        "--sentinels",
        type=int,
        default=3,
        help="with --sentinel: how many sentinels, 1 to 3 (quorum: a majority; default 3)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("exec", help="start the servers, run a command, stop them")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    sup = sub.add_parser("supervise", help="run a Procfile's processes, restarting the dead")
    sup.add_argument("-f", "--procfile", type=Path, default=BASE_DIR / "Procfile")
    sup.add_argument("--ready-url", help="print --ready-message once this URL answers 200")
    sup.add_argument("--ready-message")
    args = parser.parse_args(argv)
    # Stop when whoever started us dies (a closed terminal, a killed test run).
    set_parent_death_signal(signal.SIGTERM)
    if args.command == "supervise":
        if not args.procfile.is_file():
            parser.error(f"no Procfile at {args.procfile}")
        return supervise(args.procfile, ready_url=args.ready_url, ready_message=args.ready_message)
    cmd = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not cmd:
        parser.error("exec needs a command after --")
    timeout_factor()  # a bad TEST_TIMEOUT_FACTOR fails here, not in the middle of a run
    temp = Path(tempfile.mkdtemp(prefix="videochat-run-")) if args.fresh else None
    run_dir = args.run_dir or (temp / "run" if temp else BASE_DIR / "var" / "run")
    data_dir = args.data_dir or (temp / "data" if temp else BASE_DIR / "var" / "data")
    stack = Stack(run_dir.resolve(), data_dir.resolve(), postgres=args.postgres)
    stack.durable = not args.fresh
    if args.sentinel:
        if not 1 <= args.sentinels <= 3:
            parser.error(f"--sentinels must be 1, 2 or 3, got {args.sentinels}")
        if os.environ.get("REDIS_URL") or os.environ.get("REDIS_SENTINELS"):
            parser.error("--sentinel starts its own Redis: unset REDIS_URL / REDIS_SENTINELS")
        stack.sentinels = args.sentinels
    try:
        stack.start()
        return _run(cmd, stack)
    finally:
        stack.stop()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
