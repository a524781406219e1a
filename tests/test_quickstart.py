"""The Quick start's first command: the whole product comes up and Ctrl-C stops all of it."""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import psutil
import pytest

from tests.fixtures.workers import wait_until
from videochat.devstack import BASE_DIR, free_port, http_ok, scaled

pytestmark = pytest.mark.live


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_up_serves_health_and_ctrl_c_leaves_no_process(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "MONGODB_URI", "VIDEOCHAT_RUN_DIR", "DATABASE_URL")
    }
    env.update(
        DJANGO_DEBUG="1",
        WEB_PORT=str(port),
        WEB_WORKERS="2",  # the web tier on two cores (videochat.webpool)
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    # What bin/up runs after bootstrap; Ctrl-C in a terminal is SIGINT to its group.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "videochat.devstack",
            "--run-dir",
            str(tmp_path / "run"),
            "--data-dir",
            str(tmp_path / "data"),
            "exec",
            "--",
            "bin/serve",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=open(tmp_path / "up.log", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def output() -> str:
        return (tmp_path / "up.log").read_text(errors="replace")

    try:
        # Ready means the web tier answers 200 on /healthz (database, Redis and
        # MongoDB reachable), not that its port accepts.
        wait_until(
            lambda: proc.poll() is not None or http_ok(f"http://127.0.0.1:{port}/healthz"),
            timeout=90,
            what="/healthz to answer 200",
        )
        assert proc.poll() is None, output()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            body = json.loads(resp.read())
        assert body == {"status": "ok"}  # details only for staff (videochat/health.py)
        children = _descendants(proc.pid)
        names = " ".join(" ".join(p.cmdline()) for p in children)
        for part in ("redis-server", "nx-27017", "daphne", "celery", "rqworker"):
            assert part in names, f"{part} not running under bin/up: {names}"
        daphnes = [
            p for p in children if "--fd" in p.cmdline() and "daphne" in " ".join(p.cmdline())
        ]
        assert len(daphnes) == 2, names
        # The demo login comes last, once every process has started and the web
        # tier answers: nothing scrolls it away before the first page.
        wait_until(lambda: "log in as demo" in output(), timeout=60, what="the demo login")
        shown = output()
        assert f"Huddle is up on http://127.0.0.1:{port}/" in shown, shown
        assert f"Open http://127.0.0.1:{port}/ and log in as demo" in shown, shown
        after = shown.split("log in as demo", 1)[1].splitlines()[1:]
        # After it, only the web tier's answers to this test's own polling.
        assert all(re.search(r'web \| .*"GET /healthz" 200', line) for line in after), shown
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=scaled(60))
        gone, alive = psutil.wait_procs(children, timeout=scaled(20))
        assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
