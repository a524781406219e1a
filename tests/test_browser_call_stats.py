"""Call telemetry end to end: two headless Chromium peers in a call against real
daphne send call.stats every 2 s, and the samples land in the real MongoDB-protocol
server with the figures of a healthy link."""

from datetime import timedelta

import pytest

from rooms import telemetry
from tests.call_helpers import self_id, two_in_call
from tests.fixtures.workers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_both_peers_report_their_link_and_it_is_stored(live_url, new_context, room, owner, member):
    since = telemetry.now() - timedelta(seconds=1)
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    a, b = self_id(alice), self_id(bob)

    def stored_with_video():
        docs = telemetry.samples_for(room=room.slug, since=since)
        mine = [d for d in docs if {d["from_peer"], d["to_peer"]} == {a, b}]
        pairs = {(d["from_peer"], d["to_peer"]) for d in mine if (d["decoded"] or 0) > 0}
        return mine if pairs == {(a, b), (b, a)} else None

    docs = wait_until(stored_with_video, timeout=30, what="samples with video from both sides")
    flowing = [d for d in docs if (d["decoded"] or 0) > 0]
    for doc in flowing:
        assert doc["rtt"] is not None and 0 <= doc["rtt"] < 1000, doc
        assert doc["send_kbps"] > 0 and doc["recv_kbps"] > 0, doc
        assert doc["fps_in"] > 0 and doc["loss_in"] is not None, doc
        assert doc["level"] == "full" and doc["relay"] is False, doc
    assert len({d["call"] for d in docs}) == 1
    # The page's hook shows the same kind of sample it sent.
    last = alice.evaluate("window.huddleCall.lastSamples()")
    assert set(last) == {b} and last[b]["peer"] == b
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
