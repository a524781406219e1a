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


def _healthz_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture
def pool():
    service = devstack.daphne_service(run_dir(), env=django_env(), workers=2)
    service.start()
    # The port is bound before the workers start: ready means both run and it answers.
    deadline = time.monotonic() + 30
    while len(_workers(service)) < 2 or not _healthz_ok(service.port):
        assert time.monotonic() < deadline, "the pool did not become ready"
        time.sleep(0.1)
    yield service
    service.stop()


def test_both_workers_accept_on_the_one_port(pool):
    workers = _workers(pool)
    assert len(workers) == 2
    assert all("--fd" in w.cmdline() for w in workers)
    with urllib.request.urlopen(f"http://127.0.0.1:{pool.port}/healthz", timeout=5) as resp:
        assert json.loads(resp.read())["status"] == "ok"
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


def test_a_worker_that_dies_is_restarted_and_the_pool_keeps_serving(pool):
    first, second = _workers(pool)
    first.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live = [w for w in _workers(pool) if w.status() != psutil.STATUS_ZOMBIE]
        if len(live) == 2 and first.pid not in {w.pid for w in live}:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no worker replaced the killed one: {_workers(pool)}")
    assert pool.proc.poll() is None, "the pool stopped instead of healing"
    assert second.is_running()
    replacement = next(w for w in live if w.pid != second.pid)
    assert "--fd" in replacement.cmdline()
    # Every new connection is served, whichever listening socket it lands on:
    # the replacement accepts on the killed worker's socket.
    deadline = time.monotonic() + 30
    while not _healthz_ok(pool.port):
        assert time.monotonic() < deadline, "the healed pool does not answer /healthz"
        time.sleep(0.2)
    assert all(_healthz_ok(pool.port) for _ in range(20))
    log = pool.log_path.read_text(errors="replace")
    assert f"daphne {first.pid} exited with -9; restarting it" in log


def test_a_killed_pool_takes_its_workers_with_it(pool):
    workers = _workers(pool)
    pool.proc.send_signal(signal.SIGKILL)
    pool.proc.wait(timeout=10)
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"daphne workers outlived their pool: {alive}"


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
