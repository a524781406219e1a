"""A call across two web nodes behind HAProxy survives the death or drain of a node.

Both browsers reach the product through the balancer only. The node holding
their sockets is SIGKILLed (or drained with SIGTERM) mid-call and never comes
back: each page reconnects
through the balancer to the surviving node and resumes its session there (the
resume token and presence live in Redis, shared by the nodes), nobody sees a
leave, media keeps flowing (it is peer to peer), and signaling works on the
surviving node.
"""

import signal
import time

import pytest
from playwright.sync_api import expect

from tests.call_helpers import (
    WATCH_LEAVES,
    assert_ice_restart_renegotiates,
    assert_resumed_unseen,
    join_call,
    open_room,
    self_id,
    wait_decoding,
)
from tests.fixtures.live import django_env
from tests.test_cluster import _sockets_on, start_topology

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live,
    pytest.mark.fault,
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize("how", ["sigkill", "drain"])
def test_call_moves_to_the_surviving_node_when_its_node_goes(how, new_context, room, owner, member):
    balancer, nodes = start_topology(django_env())
    try:
        base = f"http://127.0.0.1:{balancer.port}"
        alice = open_room(new_context, base, owner)
        bob = open_room(new_context, base, member.user)
        for page in (alice, bob):
            page.evaluate(WATCH_LEAVES)
            join_call(page)
        before = {page: wait_decoding(page, 1) for page in (alice, bob)}
        ids = {page: self_id(page) for page in (alice, bob)}

        victim = max(nodes, key=_sockets_on)
        survivor = next(n for n in nodes if n is not victim)
        held = _sockets_on(victim)
        assert held >= 1
        if how == "sigkill":
            victim.kill()
        else:
            victim.proc.send_signal(signal.SIGTERM)
            assert victim.proc.wait(timeout=40) == 0, "the drained node did not exit cleanly"
        for page in (alice, bob):
            expect(page.locator("#connection-state")).to_have_text("Connected", timeout=25000)
        deadline = time.monotonic() + 20
        while _sockets_on(survivor) < 2:
            assert time.monotonic() < deadline, "the pages did not move to the surviving node"
            time.sleep(0.1)
        assert_resumed_unseen((alice, bob), ids, before)
        # Signaling works through the surviving node.
        assert_ice_restart_renegotiates(alice, bob)
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()
