"""The call survives a killed server: daphne is SIGKILLed mid-call (no disconnect
handler runs) and restarted; both browsers resume their sessions, nobody sees a leave,
and media flows throughout (it is peer to peer)."""

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
from tests.fixtures.live import daphne_service

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.fault]


def test_call_survives_daphne_sigkill_and_restart(live_url, new_context, room, owner, member):
    web = daphne_service().start()
    try:
        base = f"http://127.0.0.1:{web.port}"
        alice = open_room(new_context, base, owner)
        bob = open_room(new_context, base, member.user)
        for page in (alice, bob):
            page.evaluate(WATCH_LEAVES)
            join_call(page)
        before = {page: wait_decoding(page, 1) for page in (alice, bob)}
        ids = {page: self_id(page) for page in (alice, bob)}

        web.kill()
        for page in (alice, bob):
            expect(page.locator("#connection-state")).to_have_text("Reconnecting…")
        during = {page: wait_decoding(page, 1, above=before[page]) for page in (alice, bob)}

        web = daphne_service(port=web.port).start()
        for page in (alice, bob):
            expect(page.locator("#connection-state")).to_have_text("Connected", timeout=25000)
        assert_resumed_unseen((alice, bob), ids, during)
        # Signaling works on the new server.
        assert_ice_restart_renegotiates(alice, bob)
    finally:
        web.stop()
