"""videochat.devstack: data that survives a restart, supervision, nothing left behind.

Real processes throughout: devstack in a subprocess with its own run and data
folders, its redis-server and nx-27017, a real Celery worker, the whole product
(bin/serve) where the Procfile is under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis
from pymongo import MongoClient

from deliveries.models import Webhook
from tests.fixtures.live import django_env
from tests.fixtures.workers import Worker, wait_until
from videochat.devstack import BASE_DIR, free_port, http_ok, scaled

pytestmark = pytest.mark.live

# The stack under test starts its own servers: none of the test run's URLs.
_OURS = ("REDIS_URL", "MONGODB_URI", "VIDEOCHAT_RUN_DIR", "DATABASE_URL")


def _stack_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OURS}
    env.update(DJANGO_DEBUG="1", PYTHONUNBUFFERED="1", **extra)
    return env


def assert_all_exit(procs: list[psutil.Process], timeout: float = 15) -> None:
    """Every process exits within ``timeout`` (scaled); a zombie has exited."""

    def alive() -> list[psutil.Process]:
        found = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.NoSuchProcess:
                pass
        return found

    try:
        wait_until(lambda: not alive(), timeout=timeout, what="the whole tree to exit")
    except TimeoutError:
        pytest.fail(f"left behind: {[p.cmdline() for p in alive()]}")


class Devstack:
    """``python -m videochat.devstack --run-dir R --data-dir D exec -- CMD``."""

    def __init__(self, tmp: Path, cmd: list[str], **env: str) -> None:
        self.run_dir = tmp / "run"
        self.data_dir = tmp / "data"
        self.log_path = tmp / "devstack.log"
        env_file = self.run_dir / "services.env"
        env_file.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "videochat.devstack"),
                    *("--run-dir", str(self.run_dir), "--data-dir", str(self.data_dir)),
                    *("exec", "--", *cmd),
                ],
                cwd=BASE_DIR,
                env=_stack_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(
            lambda: env_file.exists() or self.proc.poll() is not None,
            timeout=30,
            what="devstack to start its servers",
        )
        assert self.proc.poll() is None, self.log()
        self.urls = dict(line.split("=", 1) for line in env_file.read_text().splitlines())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def named(self, part: str) -> list[psutil.Process]:
        found = []
        for p in self.tree():
            try:
                if part in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.NoSuchProcess:
                pass
        return found

    def sigkill_and_check_nothing_survives(self) -> None:
        tree = self.tree()
        assert tree, "devstack started nothing"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        assert_all_exit(tree)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(30))
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def devstacks():
    started: list[Devstack] = []

    def start(tmp: Path, cmd: list[str] | None = None, **env: str) -> Devstack:
        stack = Devstack(tmp, cmd or ["sleep", "600"], **env)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()


def _mongo(uri: str) -> MongoClient:
    return MongoClient(uri, serverSelectionTimeoutMS=int(scaled(5) * 1000))


@pytest.mark.django_db(transaction=True)
def test_sigkilled_stack_restarted_keeps_a_queued_delivery_and_dead_letters(
    tmp_path, devstacks, room, receiver, delivery_settings, deadletter_db
):
    rec = receiver()
    Webhook.objects.create(room=room, url=rec.url, events=["message.posted"])
    first = devstacks(tmp_path)
    _mongo(first.urls["MONGODB_URI"])[deadletter_db]["deadletters"].insert_one(
        {"_id": "before-the-kill", "kind": "webhook"}
    )
    # A delivery queued through the product's own path while no worker runs.
    env = django_env(
        **delivery_settings,
        REDIS_URL=first.urls["REDIS_URL"],
        MONGODB_URI=first.urls["MONGODB_URI"],
        DJANGO_SETTINGS_MODULE="videochat.settings",
    )
    emit = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from deliveries import services; print("
            f"services.room_event_emit(room_id={room.pk}, event='message.posted', data={{}}))",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert emit.returncode == 0 and emit.stdout.strip() == "1", emit.stderr
    assert redis.Redis.from_url(first.urls["REDIS_URL"]).llen("celery") == 1

    first.sigkill_and_check_nothing_survives()

    second = devstacks(tmp_path)
    doc = _mongo(second.urls["MONGODB_URI"])[deadletter_db]["deadletters"].find_one(
        {"_id": "before-the-kill"}
    )
    assert doc is not None, "the dead letter written before the kill is gone"
    worker = Worker(
        {
            **delivery_settings,
            "REDIS_URL": second.urls["REDIS_URL"],
            "MONGODB_URI": second.urls["MONGODB_URI"],
        }
    ).start()
    try:
        hits = rec.wait_hits(1)
    finally:
        worker.stop()
    assert [h.status for h in hits] == [200]
    assert hits[0].event == "message.posted"


def test_a_killed_mongodb_server_is_reaped_and_restarted_with_its_data(tmp_path, devstacks):
    stack = devstacks(tmp_path)
    uri = stack.urls["MONGODB_URI"]
    _mongo(uri)["t"]["c"].insert_one({"_id": "kept"})
    (old,) = stack.named("nx-27017")
    pid_file = stack.run_dir / "mongo.pid"
    assert pid_file.read_text().strip() == str(old.pid)
    old.kill()

    def restarted():
        procs = [p for p in stack.named("nx-27017") if p.pid != old.pid]
        return procs and pid_file.exists() and pid_file.read_text().strip() == str(procs[0].pid)

    wait_until(restarted, timeout=30, what="a new nx-27017")
    wait_until(lambda: "mongodb restarted" in stack.log(), timeout=30, what="the restart logged")
    # Reaped: the killed one is not left as a zombie child of devstack.
    assert not psutil.pid_exists(old.pid) or old.pid not in [
        p.pid for p in psutil.Process(stack.proc.pid).children()
    ]
    assert _mongo(uri)["t"]["c"].find_one({"_id": "kept"}) == {"_id": "kept"}
    assert f"mongodb (pid {old.pid}) exited with -9" in stack.log()


def test_devstack_stops_its_tree_when_its_parent_is_killed(tmp_path):
    """A closed terminal or a killed test run: devstack's parent dies, not devstack."""
    env_file = tmp_path / "run" / "services.env"
    devstack = (
        f"{sys.executable} -m videochat.devstack --run-dir {tmp_path / 'run'} "
        f"--data-dir {tmp_path / 'data'} exec -- sleep 600"
    )
    parent = subprocess.Popen(
        ["bash", "-c", f"{devstack}; echo not reached"],  # bash waits: devstack is its child
        cwd=BASE_DIR,
        env=_stack_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(env_file.exists, timeout=30, what="devstack to start its servers")
        tree = psutil.Process(parent.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "videochat.devstack" in names and "redis-server" in names, names
        parent.kill()
        parent.wait()
        assert_all_exit(tree)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_pid_file_left_by_a_crash_does_not_block_the_next_start(tmp_path, devstacks):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mongo.pid").write_text("1\n")  # a live pid, as after a reboot
    stack = devstacks(tmp_path)
    assert _mongo(stack.urls["MONGODB_URI"]).admin.command("ping")["ok"] == 1


def _product(tmp_path: Path, devstacks) -> tuple[Devstack, int]:
    port = free_port()
    stack = devstacks(
        tmp_path,
        ["bin/serve"],
        WEB_PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/healthz") or stack.proc.poll() is not None,
        timeout=90,
        what="/healthz to answer 200",
    )
    assert stack.proc.poll() is None, stack.log()
    return stack, port


def test_a_killed_celery_worker_and_web_tier_are_restarted(tmp_path, devstacks):
    stack, port = _product(tmp_path, devstacks)
    worker = next(p for p in stack.named("celery") if "worker" in p.cmdline())
    web = stack.named("videochat.webpool")[0]
    worker.kill()
    web.kill()

    def back(part: str, old: psutil.Process):
        return [p for p in stack.named(part) if p.pid != old.pid and p.ppid() != old.pid]

    wait_until(lambda: back("celery", worker), timeout=60, what="a new Celery worker")
    wait_until(lambda: back("videochat.webpool", web), timeout=60, what="a new web tier")
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, what="/healthz again"
    )
    log = stack.log()
    assert "worker (pid" in log and "restarting worker" in log, log[-3000:]
    assert stack.proc.poll() is None


def test_sigkilled_devstack_leaves_no_process_of_its_tree(tmp_path, devstacks):
    stack, _ = _product(tmp_path, devstacks)
    names = " ".join(" ".join(p.cmdline()) for p in stack.tree())
    for part in ("redis-server", "nx-27017", "daphne", "celery", "rqworker", "rqcron"):
        assert part in names, f"{part} not running: {names}"
    stack.sigkill_and_check_nothing_survives()


def test_supervise_restarts_a_crashing_process_with_backoff(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("crashy: sh -c 'echo up; exit 3'\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "videochat.devstack", "supervise", "-f", str(procfile)],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        while "restarting crashy in 2s" not in "".join(seen):
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=scaled(20))
    out = "".join(seen) + rest
    assert out.count("crashy | up") == 2, out
    assert "exited with 3" in out and "restarting crashy in 1s" in out
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["exec"], {}, "exec needs a command after --"),
        (["frobnicate"], {}, "invalid choice: 'frobnicate'"),
        (["supervise", "-f", "/nonexistent/Procfile"], {}, "no Procfile at /nonexistent/Procfile"),
        (["--fresh", "exec", "--", "true"], {"TEST_TIMEOUT_FACTOR": "soon"}, "TEST_TIMEOUT_FACTOR"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(argv, env, message):
    result = subprocess.run(
        [sys.executable, "-m", "videochat.devstack", *argv],
        cwd=BASE_DIR,
        env=_stack_env(**env),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_a_second_stack_on_the_same_data_is_refused(tmp_path, devstacks):
    devstacks(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "videochat.devstack", "--data-dir", str(tmp_path / "data")),
            *("exec", "--", "true"),
        ],
        cwd=BASE_DIR,
        env=_stack_env(TEST_TIMEOUT_FACTOR="0.1"),  # its wait for the lock: 2 s
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert result.returncode != 0
    assert "is in use by another devstack" in result.stderr
