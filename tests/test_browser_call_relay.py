"""Relay-only calls through a real coturn (TURN REST credentials from the server):
media flows only over relay candidates, and a wrong secret gets no media at all."""

import pytest
from playwright.sync_api import expect

from tests.call_helpers import coturn_service, join_call, open_room, wait_decoding
from tests.fixtures.live import daphne_service, run_dir

pytestmark = [pytest.mark.browser, pytest.mark.live]

SECRET = "relay-test-secret-8c1f"


@pytest.fixture
def coturn():
    service = coturn_service(run_dir(), SECRET).start()
    yield service
    service.stop()


def relay_daphne(coturn, secret: str):
    return daphne_service(
        TURN_URLS=f"turn:127.0.0.1:{coturn.port}?transport=udp",
        TURN_SECRET=secret,
        TURN_TTL="600",
        ICE_RELAY_ONLY="1",
    ).start()


def check_connectivity(page, says: str) -> None:
    page.click("#pre-devices")
    page.click("#net-check")
    expect(page.locator("#net-check-result")).to_contain_text(says, timeout=20000)
    page.click("#toggle-more")  # closes the panel


def test_relay_only_call_decodes_through_coturn(live_url, coturn, new_context, room, owner, member):
    web = relay_daphne(coturn, SECRET)
    try:
        base = f"http://127.0.0.1:{web.port}"
        alice = open_room(new_context, base, owner)
        # The pre-join connectivity check proves TURN reachable (a relay candidate).
        check_connectivity(alice, "The TURN relay is reachable (relay candidates).")
        bob = open_room(new_context, base, member.user)
        join_call(alice)
        join_call(bob)
        for page in (alice, bob):
            first = wait_decoding(page, 1, timeout=30)
            wait_decoding(page, 1, above=first)
            stats = page.evaluate("window.huddleCall.stats()")
            assert [s["relay"] for s in stats.values()] == [True], stats
            policy = page.evaluate(
                "[...window.huddleCall.state.peers.values()][0].pc.getConfiguration()"
                ".iceTransportPolicy"
            )
            assert policy == "relay"
    finally:
        web.stop()


def test_relay_only_with_a_wrong_secret_gets_no_media(
    live_url, coturn, new_context, room, owner, member
):
    web = relay_daphne(coturn, "not-the-secret")
    try:
        base = f"http://127.0.0.1:{web.port}"
        alice = open_room(new_context, base, owner)
        check_connectivity(alice, "The TURN relay is not reachable")
        bob = open_room(new_context, base, member.user)
        join_call(alice)
        join_call(bob)
        with pytest.raises(AssertionError, match="not decoding"):
            wait_decoding(bob, 1, timeout=8)
    finally:
        web.stop()
