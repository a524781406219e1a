"""Predictive mode in a real call: the page loads the shipped freeze model
(static/js/quality-model.json) when the mode is set, its telemetry samples carry the
model's probability, and on a clean link the model does not step the ladder down."""

from datetime import timedelta

import pytest

from rooms import telemetry
from tests.call_helpers import join_call, open_room, self_id, wait_decoding
from tests.fixtures.workers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_predictive_mode_loads_the_model_and_its_samples_carry_the_probability(
    live_url, new_context, room, owner, member
):
    since = telemetry.now() - timedelta(seconds=1)
    alice = open_room(new_context, live_url, owner)
    bob = open_room(new_context, live_url, member.user)
    join_call(alice)
    join_call(bob)
    for page in (alice, bob):
        wait_decoding(page, 1)
    a, b = self_id(alice), self_id(bob)
    alice.evaluate("window.huddleCall.setAdaptMode('predictive')")

    def predicted():
        docs = telemetry.samples_for(room=room.slug, since=since)
        mine = [d for d in docs if d["from_peer"] == a and d["to_peer"] == b]
        with_pred = [d for d in mine if d.get("pred") is not None]
        return (with_pred, docs) if len(with_pred) >= 3 else None

    with_pred, docs = wait_until(predicted, timeout=40, what="alice's samples with pred")
    assert all(0 <= d["pred"] <= 1 for d in with_pred), with_pred
    # Bob stays reactive: no prediction in what he sends.
    assert all(d.get("pred") is None for d in docs if d["from_peer"] == b)
    # A clean loopback link: the model stays under its threshold, no predicted step.
    events = [e["event"] for e in alice.evaluate("window.huddleCall.events()")]
    assert not [e for e in events if e.startswith("step:")], events
    assert alice.evaluate("window.huddleCall.sendLevels()") == {b: "full"}
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
