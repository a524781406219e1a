"""videochat.webpool: several daphne processes on one port (the Procfile's WEB_WORKERS)."""

import json
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.fixtures.live import django_env, run_dir
from videochat import devstack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _workers(service):
    return psutil.Process(service.proc.pid).children()


def _wait_exit(proc, timeout=20):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("the pool did not exit")


def _accepted(worker, port):
    return sum(
        1
        for conn in worker.net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port
    )


@pytest.fixture
def pool():
    service = devstack.daphne_service(run_dir(), env=django_env(), workers=2)
    service.start()
    yield service
    service.stop()


def test_both_workers_accept_on_the_one_port(pool):
    workers = _workers(pool)
    assert len(workers) == 2
    assert all("--fd" in w.cmdline() for w in workers)
    with urllib.request.urlopen(f"http://127.0.0.1:{pool.port}/healthz", timeout=5) as resp:
        assert json.loads(resp.read())["checks"]["database"] == "ok"
    # Hold connections open until the kernel has handed some to each worker.
    held = []
    deadline = time.monotonic() + devstack.scaled(20)
    try:
        while time.monotonic() < deadline:
            held.append(devstack.socket.create_connection(("127.0.0.1", pool.port), timeout=5))
            time.sleep(0.05)  # accepted by then
            if all(_accepted(w, pool.port) > 0 for w in workers):
                break
        else:
            pytest.fail("one worker accepted no connection")
    finally:
        for conn in held:
            conn.close()


def test_a_worker_that_dies_takes_the_pool_down_with_its_status(pool):
    first, second = _workers(pool)
    first.send_signal(signal.SIGKILL)
    assert _wait_exit(pool.proc) == 128 + signal.SIGKILL  # the supervisor sees the failure
    assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE


def test_sigterm_stops_every_worker_and_exits_zero(pool):
    workers = _workers(pool)
    pool.proc.send_signal(signal.SIGTERM)
    assert _wait_exit(pool.proc) == 0
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


def test_a_pool_killed_outright_takes_its_workers_with_it(pool):
    workers = _workers(pool)
    pool.proc.send_signal(signal.SIGKILL)
    pool.proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=devstack.scaled(10))
    assert not alive


@pytest.mark.parametrize(
    ("value", "proxy_headers"), [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_use_x_forwarded_for_gives_daphne_proxy_headers(monkeypatch, value, proxy_headers):
    from videochat.webpool import parse

    monkeypatch.setenv("USE_X_FORWARDED_FOR", value)
    _, daphne_args = parse(["--port", "8000", "--", "videochat.asgi:application"])
    assert ("--proxy-headers" in daphne_args) is proxy_headers
    assert daphne_args[-1] == "videochat.asgi:application"


def test_bad_arguments_are_refused_with_a_message():
    result = subprocess.run(
        [sys.executable, "-m", "videochat.webpool", "--workers", "0", "--port", "1", "--", "app"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "--workers must be from 1 to 64" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "videochat.webpool", "--port", "1", "--", "app"],
        capture_output=True,
        text=True,
        check=False,
        env={**django_env(), "USE_X_FORWARDED_FOR": "maybe"},
    )
    assert result.returncode == 2
    assert "USE_X_FORWARDED_FOR='maybe' is not a boolean" in result.stderr
    port = devstack.free_port()
    with devstack.socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "videochat.webpool", "--port", str(port), "--", "app"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
