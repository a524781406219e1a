"""/metrics under the real pool: two daphne processes' sockets add up in one scrape, and
a killed worker's sockets leave the gauge (videochat.webpool, multiprocess mode)."""

import asyncio
import os
import signal
import time
import urllib.request

import psutil
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.live import django_env, run_dir
from tests.fixtures.sockets import session_cookie_for
from videochat import devstack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

TOKEN = "live-metrics-token-0123456789"


def sockets_open(port: int) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "huddle_sockets_open":
            return sum(s.value for s in family.samples)
    raise AssertionError("no huddle_sockets_open")


def accepted(worker: psutil.Process, port: int) -> int:
    return sum(
        1
        for conn in worker.net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port
    )


@pytest.fixture
def pool():
    service = devstack.daphne_service(run_dir(), env=django_env(METRICS_TOKEN=TOKEN), workers=2)
    service.start()
    deadline = time.monotonic() + 30
    while len(psutil.Process(service.proc.pid).children()) < 2:
        assert time.monotonic() < deadline, "the pool did not start"
        time.sleep(0.1)
    while True:
        try:
            sockets_open(service.port)
            break
        except OSError:
            assert time.monotonic() < deadline, "the pool did not answer"
            time.sleep(0.1)
    yield service
    service.stop()


async def test_sockets_on_every_worker_add_up_and_a_killed_worker_drops_out(pool, room, owner):
    base = f"http://127.0.0.1:{pool.port}"
    cookie = await session_cookie_for(owner)
    workers = psutil.Process(pool.proc.pid).children()
    before = await asyncio.to_thread(sockets_open, pool.port)
    held = []
    try:
        # Open sockets until the kernel has handed some to each worker.
        while not all(accepted(w, pool.port) for w in workers):
            assert len(held) < 40, "one worker accepted no socket"
            held.append(
                await websockets.connect(
                    f"ws://127.0.0.1:{pool.port}/ws/rooms/{room.slug}/",
                    origin=base,
                    additional_headers={"Cookie": f"sessionid={cookie}"},
                )
            )
        assert await asyncio.to_thread(sockets_open, pool.port) == before + len(held)
        victim = workers[0]
        lost = accepted(victim, pool.port)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        deadline = time.monotonic() + 20
        now = None
        while True:
            try:
                now = await asyncio.to_thread(sockets_open, pool.port)
                if now == before + len(held) - lost:
                    break
            except OSError:
                pass  # the scrape reached the dying worker; the kernel retries elsewhere
            assert time.monotonic() < deadline, f"sockets_open stuck at {now}"
            await asyncio.sleep(0.2)
    finally:
        for ws in held:
            await ws.close()
