"""Two web nodes behind a real HAProxy (videochat.cluster): a node dies under chat load.

The clients speak the protocol through the balancer only. One node is killed
with SIGKILL mid-run; its clients must be welcomed on the surviving node within
5 s of losing their socket, and the chat contract must hold for everyone
(0 acknowledged messages lost, 0 duplicated, one order; tests/fault/check.py).
"""

import asyncio
import signal
import time
import urllib.request

import psutil
import pytest

from tests.fault.harness import (  # noqa: F401 - people_fixture provides `people`
    DAPHNE_ENV,
    assert_contract,
    make_clients,
    people_fixture,
    run_clients,
)
from tests.fixtures.live import django_env, run_dir
from videochat import cluster

pytestmark = [pytest.mark.live, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

BACK_WITHIN_S = 5.0


def _sockets_on(node) -> int:
    """Established connections accepted by a node's processes (the pool and its workers)."""
    procs = [psutil.Process(node.proc.pid), *psutil.Process(node.proc.pid).children()]
    return sum(
        1
        for proc in procs
        for conn in proc.net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == node.port
    )


def _answers(port: int, path: str = "/readyz") -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def _one_node_only(balancer, nodes) -> str:
    log = balancer.log_path.read_text(errors="replace").splitlines()
    checks = [line for line in log if "Server nodes/" in line][-6:]
    return f"the balancer used one node only: {[_sockets_on(n) for n in nodes]}; {checks}"


async def _busiest_once_both_serve(balancer, nodes):
    """The node with the most sockets, once both hold some and chat is flowing on both."""
    deadline = time.monotonic() + 20
    while not all(_sockets_on(n) > 0 for n in nodes):
        assert time.monotonic() < deadline, _one_node_only(balancer, nodes)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # messages in flight on both nodes
    return max(nodes, key=_sockets_on)


def start_topology(env: dict[str, str], *, nodes: int = 2):
    """``nodes`` web nodes and HAProxy, once every node and the balancer answer."""
    started = [cluster.node_service(run_dir(), workers=1, env=env).start() for _ in range(nodes)]
    balancer = cluster.haproxy_service(run_dir(), nodes=[n.port for n in started]).start()
    deadline = time.monotonic() + 30
    while not (all(_answers(n.port) for n in started) and _answers(balancer.port, "/healthz")):
        assert time.monotonic() < deadline, "the nodes or the balancer never answered"
        time.sleep(0.1)
    return balancer, started


@pytest.fixture
def topology():
    balancer, nodes = start_topology(django_env(**DAPHNE_ENV))
    yield balancer, nodes
    balancer.stop()
    for node in nodes:
        node.stop()


def test_haproxy_config_checks_health_and_passes_websockets(tmp_path):
    text = cluster.haproxy_config(bind="127.0.0.1", port=8000, nodes=[9001, 9002])
    assert "server node1 127.0.0.1:9001 check" in text
    assert "server node2 127.0.0.1:9002 check" in text
    assert "uri /readyz" in text and "timeout tunnel" in text
    assert "set-header X-Forwarded-For" in text


def test_a_node_killed_under_chat_load_loses_nothing_and_its_clients_move(people, topology):
    balancer, nodes = topology
    killed_at: list[float] = []
    victims: list = []

    async def main():
        clients = make_clients(people, balancer.port, to_send=30)

        async def faults():
            victim = await _busiest_once_both_serve(balancer, nodes)
            victims.append(victim)
            victim.kill()
            killed_at.append(time.monotonic())
            await asyncio.sleep(3)

        took = await run_clients(clients, faults, settle_s=40)
        return clients, took

    clients, took = asyncio.run(main())
    summaries = assert_contract(clients)
    moved = [c for c in clients if any(t >= killed_at[0] for t in c.dropped_at)]
    assert moved, "no client was on the killed node"
    for client in moved:
        dropped = min(t for t in client.dropped_at if t >= killed_at[0])
        back = [t for t in client.welcomed_at if t > dropped]
        assert back, f"{client.name} never came back after the node died"
        assert back[0] - dropped < BACK_WITHIN_S, (
            f"{client.name} was back {back[0] - dropped:.1f}s after losing its node"
        )
    survivor = next(n for n in nodes if n is not victims[0])
    assert _sockets_on(survivor) == 0 or survivor.proc.poll() is None
    print(f"node kill: {summaries}, {len(moved)} clients moved, in {took:.1f}s")


def test_a_node_drained_under_chat_load_moves_its_clients_and_exits(people, topology):
    balancer, nodes = topology
    drained_at: list[float] = []
    exit_codes: list[int] = []

    async def main():
        clients = make_clients(people, balancer.port, to_send=30)

        async def faults():
            victim = await _busiest_once_both_serve(balancer, nodes)
            victim.proc.send_signal(signal.SIGTERM)
            drained_at.append(time.monotonic())
            exit_codes.append(await asyncio.to_thread(victim.proc.wait, 40))
            await asyncio.sleep(1)

        took = await run_clients(clients, faults, settle_s=40)
        return clients, took

    clients, took = asyncio.run(main())
    summaries = assert_contract(clients)
    assert exit_codes == [0], "the drained node did not exit cleanly"
    moved = [c for c in clients if 4503 in c.close_codes]
    assert moved, "no client was told to move (close code 4503)"
    for client in moved:
        dropped = min(t for t in client.dropped_at if t >= drained_at[0])
        back = [t for t in client.welcomed_at if t > dropped]
        assert back and back[0] - dropped < BACK_WITHIN_S, f"{client.name} did not move in time"
    # Moving is not leaving: nobody saw anybody leave.
    assert [c.leaves for c in clients if c.leaves] == []
    print(f"node drain: {summaries}, {len(moved)} clients moved, in {took:.1f}s")
