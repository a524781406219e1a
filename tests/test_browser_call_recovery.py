"""Recovery chooses in a real call: two Chromium peers relay-only through a real
coturn; coturn is frozen (SIGSTOP) until both links break, so each browser chooses an
ICE restart (docs/adaptation.md, "Recovery"), logs it with its reason (page events and
the telemetry sample in MongoDB), and media comes back once coturn runs again."""

import os
import signal
import time
from datetime import timedelta

import pytest

from rooms import telemetry
from tests.call_helpers import coturn_service, frames, self_id, two_in_call, wait_decoding
from tests.fixtures.live import run_dir
from tests.fixtures.workers import wait_until
from tests.test_browser_call_relay import SECRET, relay_daphne

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.fault]


@pytest.fixture
def turn():
    service = coturn_service(run_dir(), SECRET).start()
    yield service
    service.stop()


RECOVERIES = "window.huddleCall.events().filter(e => e.event.startsWith('recover:'))"


def test_a_broken_relay_path_gets_an_ice_restart_logged_with_its_reason(
    live_url,
    turn,
    new_context,
    room,
    owner,
    member,
):
    since = telemetry.now() - timedelta(seconds=1)
    web = relay_daphne(turn, SECRET)
    stopped = False
    try:
        base = f"http://127.0.0.1:{web.port}"
        alice, bob = two_in_call(new_context, base, owner, member.user, timeout=30)
        a, b = self_id(alice), self_id(bob)
        os.kill(turn.proc.pid, signal.SIGSTOP)  # the only path between them stops
        stopped = True
        deadline = time.monotonic() + 45
        while not all(page.evaluate(RECOVERIES) for page in (alice, bob)):
            traces = [p.evaluate("window.huddleCall.trace.slice(-20)") for p in (alice, bob)]
            assert time.monotonic() < deadline, traces
            alice.wait_for_timeout(200)
        os.kill(turn.proc.pid, signal.SIGCONT)
        stopped = False
        for page in (alice, bob):
            first = page.evaluate(RECOVERIES)[0]
            # Relay-only already and the socket up: an ICE restart, for the ICE state seen.
            assert first["event"] in (
                "recover:ice-restart:disconnected",
                "recover:ice-restart:failed",
            ), first
        # Media back through the relay, on the same connections.
        for page in (alice, bob):
            wait_decoding(page, 1, above=frames(page), timeout=45)

        def logged():
            docs = telemetry.samples_for(room=room.slug, since=since)
            return {
                (d["from_peer"], d["to_peer"])
                for d in docs
                if any(e.startswith("recover:ice-restart:") for e in d["events"])
            } >= {(a, b), (b, a)}

        wait_until(logged, timeout=20, what="the recovery choice in both sides' samples")
    finally:
        if stopped:
            os.kill(turn.proc.pid, signal.SIGCONT)
        web.stop()
