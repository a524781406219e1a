"""The Quick start's first command: the whole product comes up and Ctrl-C stops all of it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from videochat.devstack import BASE_DIR, free_port, wait_for_port

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
            "exec",
            "--",
            "bin/serve",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=90, proc=proc)
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                body = json.loads(resp.read())
            if body["status"] == "ok" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert body == {"status": "ok"}  # details only for staff (videochat/health.py)
        children = _descendants(proc.pid)
        names = " ".join(" ".join(p.cmdline()) for p in children)
        for part in ("redis-server", "nx-27017", "daphne", "celery", "rqworker"):
            assert part in names, f"{part} not running under bin/up: {names}"
        daphnes = [
            p for p in children if "--fd" in p.cmdline() and "daphne" in " ".join(p.cmdline())
        ]
        assert len(daphnes) == 2, names
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
        assert "log in as demo" in output
        assert f"http://127.0.0.1:{port}/" in output  # the port it really serves on
        gone, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
