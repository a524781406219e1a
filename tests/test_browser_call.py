"""Calls in real headless Chromium against a real daphne: each participant decodes the
others' video (getStats framesDecoded rising), through leaves and a killed socket."""

import time

import pytest
from playwright.sync_api import expect

from rooms import services
from tests.call_helpers import frames, join_call, open_room, self_id, two_in_call, wait_decoding
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.live]


DEBUG_PEERS = """[...window.huddleCall.state.peers.values()].map(p => ({
  offers: p.negotiator.offersSent, restarting: p.negotiator.restarting,
  signaling: p.pc.signalingState, ice: p.pc.iceConnectionState, polite: p.negotiator.polite}))"""


def poll_until(page, expression: str, *, timeout: float = 15.0) -> None:
    # page.wait_for_function evaluates strings with eval, which the CSP forbids.
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, (
            f"not true within {timeout}s: {expression}",
            page.evaluate(DEBUG_PEERS),
        )
        page.wait_for_timeout(100)


@pytest.fixture
def carol(django_user_model, room, invite):
    user = make_user(django_user_model, "carol")
    services.membership_join(invite=invite, user=user)
    return user


def test_two_participants_decode_each_others_video(live_url, new_context, room, owner, member):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    first = {page: wait_decoding(page, 1) for page in (alice, bob)}
    # Rising, not just started: media keeps flowing.
    for page in (alice, bob):
        wait_decoding(page, 1, above=first[page])
        expect(page.locator("#video-grid .tile")).to_have_count(2)
        expect(page.locator("#call-state")).to_have_text("Connected to 1 of 1")
    assert frames(alice).keys() == {self_id(bob)}
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)


def test_three_participants_mesh_and_a_leave_updates_the_grids(
    live_url, new_context, room, owner, member, carol
):
    pages = [open_room(new_context, live_url, u) for u in (owner, member.user, carol)]
    for page in pages:
        join_call(page)
    first = {page: wait_decoding(page, 2, timeout=30) for page in pages}
    for page in pages:
        wait_decoding(page, 2, above=first[page])
        expect(page.locator("#video-grid .tile")).to_have_count(3)

    alice, bob, carol_page = pages
    carol_id = self_id(carol_page)
    carol_page.click("#leave-call")
    expect(carol_page.locator("#left")).to_be_visible()
    for page in (alice, bob):
        expect(page.locator(f'#video-grid [data-peer-id="{carol_id}"]')).to_have_count(0)
        expect(page.locator("#video-grid .tile")).to_have_count(2)
        expect(page.locator("#call-status")).to_contain_text("carol left the call")
        # Carol left the call, not the room: she is still here, in the chat.
        expect(page.locator("#online li")).to_have_count(3)
        # The two who stayed still see each other.
        before = frames(page)
        assert carol_id not in before
        wait_decoding(page, 1, above=before)


def test_mute_and_camera_off_reach_the_others(live_url, new_context, room, owner, member):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    bob.click("#toggle-mic")
    bob.click("#toggle-cam")
    tile = alice.locator(f'#video-grid [data-peer-id="{self_id(bob)}"]')
    expect(tile).to_have_attribute("data-audio", "false")
    expect(tile).to_have_attribute("data-video", "false")
    expect(tile.locator(".tile-icons")).to_have_text("muted · camera off")
    expect(bob.locator("#toggle-mic")).to_have_attribute("aria-pressed", "true")


@pytest.mark.fault
def test_signaling_socket_killed_mid_call_resumes_and_media_continues(
    live_url, new_context, room, owner, member
):
    """Bob's room socket is cut and refused for 3 s: his session resumes under the
    same peer id, alice never sees him leave, and media flows before, during, after."""
    outage = {"on": False, "routes": []}

    def route(ws):
        if outage["on"]:
            ws.close(code=4000, reason="test outage")
            return
        server = ws.connect_to_server()
        outage["routes"].append(server)

    alice = open_room(new_context, live_url, owner)
    alice.evaluate(
        "window.leaves = []; window.huddle.socket.on('presence.leave', f => window.leaves.push(f))"
    )
    bob = open_room(new_context, live_url, member.user, route=route)
    join_call(alice)
    join_call(bob)
    wait_decoding(alice, 1)
    before_bob = wait_decoding(bob, 1)
    bob_id = self_id(bob)

    outage["on"] = True
    outage["routes"][-1].close(code=4000, reason="test cut")
    expect(bob.locator("#call-status")).to_contain_text("reconnecting")
    # Peer-to-peer media does not need the signaling socket.
    during = wait_decoding(bob, 1, above=before_bob)
    bob.wait_for_timeout(3000)
    outage["on"] = False

    expect(bob.locator("#connection-state")).to_have_text("Connected", timeout=20000)
    expect(bob.locator("#call-status")).to_contain_text("Reconnected")
    assert self_id(bob) == bob_id, "the session was resumed, not rejoined"
    wait_decoding(bob, 1, above=during)
    wait_decoding(alice, 1, above=frames(alice))
    for page in (alice, bob):
        expect(page.locator("#online li")).to_have_count(2)
        expect(page.locator("#video-grid .tile")).to_have_count(2)
    assert alice.evaluate("window.leaves") == []
    # Signaling works again after the resume: a renegotiation (camera off and on
    # is only presence; an ICE restart is real SDP) completes.
    bob.evaluate(
        "for (const p of window.huddleCall.state.peers.values()) p.negotiator.restartIce()"
    )
    renegotiated = (
        "[...window.huddleCall.state.peers.values()].every(p => p.negotiator.offersSent >= 1"
        " && !p.negotiator.restarting && p.pc.signalingState === 'stable')"
    )
    try:
        poll_until(bob, renegotiated)
    except AssertionError as exc:
        traces = [p.evaluate("window.huddleCall.trace") for p in (alice, bob)]
        raise AssertionError(f"{exc}\nalice: {traces[0]}\nbob: {traces[1]}") from None
    wait_decoding(alice, 1, above=frames(alice))


def test_simultaneous_entry_still_connects(live_url, new_context, room, owner, member):
    """Both click Join at once: neither has seen the other in the call yet, so the
    entry fallback decides who offers. The impolite side offers first; the polite
    side, waiting longer, answers: no crossed offers (a brand-new connection that
    rolled back its first offer could come out with no ICE candidates in Chromium
    and stay stuck until replaced: 3 runs of 16 under load before this order)."""
    alice = open_room(new_context, live_url, owner)
    bob = open_room(new_context, live_url, member.user)
    for page in (alice, bob):
        page.wait_for_selector("#join-call:not([disabled])")
    # The same wall-clock moment on both pages (one machine, one clock): joined one
    # after the other from here, bob would often see alice in the call first.
    at = int(time.time() * 1000) + 300
    for page in (alice, bob):
        page.evaluate("(at) => setTimeout(() => window.huddleCall.join(), at - Date.now())", at)
    wait_decoding(alice, 1, timeout=20, others=[bob])
    wait_decoding(bob, 1, timeout=20, others=[alice])
    peer = "[...window.huddleCall.state.peers.values()][0]"
    for page in (alice, bob):
        assert page.evaluate(f"{peer}.negotiator.collisions") == 0, "the entry offers crossed"
        assert page.evaluate("window.huddleCall.state.rebuilds") == 0


def test_a_link_that_never_connects_is_replaced_and_the_call_connects(
    live_url, new_context, room, owner, member
):
    """The impolite side's offer is answered but the answer is lost on its way: the link
    never connects, so its watchdog replaces the connection (a fresh offer), the other
    side replaces its own to answer, and media flows both ways."""
    armed: dict[str, bool] = {}
    lost: list[str] = []

    def route_for(name):
        def route(ws):
            server = ws.connect_to_server()

            def to_page(message):
                if armed.get(name) and not lost and '"signal.answer"' in str(message):
                    lost.append(str(message))
                    return
                ws.send(message)

            server.on_message(to_page)

        return route

    alice = open_room(new_context, live_url, owner, route=route_for("alice"))
    bob = open_room(new_context, live_url, member.user, route=route_for("bob"))
    ids = {"alice": self_id(alice), "bob": self_id(bob)}
    pages = {"alice": alice, "bob": bob}
    impolite = max(ids, key=ids.__getitem__)  # the larger peer id is impolite
    polite = "bob" if impolite == "alice" else "alice"
    armed[impolite] = True
    join_call(pages[polite])
    in_call = f"window.huddle.presence.peers.get('{ids[polite]}')?.in_call === true"
    poll_until(pages[impolite], in_call)
    join_call(pages[impolite])  # the one who enters offers: its answer is lost
    poll_until(pages[polite], "window.huddleCall.state.peers.size === 1")
    signaling = "[...window.huddleCall.state.peers.values()][0].pc.signalingState"
    assert pages[impolite].evaluate(signaling) == "have-local-offer", "the answer got through"
    wait_decoding(pages[impolite], 1, timeout=30, others=[pages[polite]])
    wait_decoding(pages[polite], 1, timeout=10, others=[pages[impolite]])
    assert len(lost) == 1
    rebuilds = "window.huddleCall.state.rebuilds"
    assert pages[impolite].evaluate(rebuilds) == 1, "the stuck side replaced its connection"
    assert pages[polite].evaluate(rebuilds) == 1, "the other side followed the fresh offer"
    assert not alice.errors and not bob.errors


def test_degrading_to_audio_only_stops_video_and_recovery_restores_it(
    live_url, new_context, room, owner, member
):
    """The send levels graceful degradation uses really change what the other decodes."""
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    set_level = (
        "async (l) => { for (const p of window.huddleCall.state.peers.values())"
        " await p.setSendLevel(l); }"
    )
    bob.evaluate(set_level, "audio")
    alice.wait_for_timeout(1000)  # frames already in flight drain
    paused = frames(alice)
    alice.wait_for_timeout(1500)
    assert frames(alice) == paused, "video kept flowing at audio"
    bob.evaluate(set_level, "reduced")
    wait_decoding(alice, 1, above=paused)
    bob.evaluate(set_level, "full")
    wait_decoding(alice, 1, above=frames(alice))


@pytest.mark.fault
def test_silently_stalled_socket_is_detected_and_resumed_without_a_leave(
    live_url, new_context, room, owner, member
):
    """Bob's network goes offline: his socket never fires close. The browser's offline
    event (and else the heartbeat) notices; the client reconnects when the network is
    back and resumes; the server retires the old socket (4005) and alice never sees bob
    leave. Media keeps flowing throughout."""
    alice = open_room(new_context, live_url, owner)
    alice.evaluate(
        "window.leaves = []; window.huddle.socket.on('presence.leave', f => window.leaves.push(f))"
    )
    bob = open_room(new_context, live_url, member.user)
    join_call(alice)
    join_call(bob)
    before = wait_decoding(alice, 1)
    bob_id = self_id(bob)
    # A 1 s heartbeat instead of 10 s so the test takes seconds, not half a minute.
    bob.evaluate(
        "window.huddle.socket.opts.heartbeatMs = 1000; window.huddle.socket.startHeartbeat()"
    )
    bob.context.set_offline(True)
    expect(bob.locator("#call-status")).to_contain_text("You are offline", timeout=10000)
    during = wait_decoding(alice, 1, above=before)
    bob.context.set_offline(False)
    expect(bob.locator("#connection-state")).to_have_text("Connected", timeout=25000)
    assert self_id(bob) == bob_id
    wait_decoding(alice, 1, above=during)
    wait_decoding(bob, 1, above=frames(bob))
    expect(alice.locator("#online li")).to_have_count(2)
    assert alice.evaluate("window.leaves") == []


def test_call_across_two_server_instances(live_url, new_context, room, owner, member):
    """Alice and bob are on different daphne processes: presence and the targeted
    signals cross instances through Redis."""
    from tests.fixtures.live import daphne_service

    other = daphne_service().start()
    try:
        alice = open_room(new_context, live_url, owner)
        bob = open_room(new_context, f"http://127.0.0.1:{other.port}", member.user)
        expect(alice.locator("#online li")).to_have_count(2)
        join_call(alice)
        join_call(bob)
        for page in (alice, bob):
            wait_decoding(page, 1, above=wait_decoding(page, 1))
    finally:
        other.stop()


def test_prejoin_preview_lists_devices_and_switches_camera(live_url, new_context, room, owner):
    page = open_room(new_context, live_url, owner)
    page.wait_for_selector("#join-call:not([disabled])")
    expect(page.locator("#prejoin")).to_be_visible()
    expect(page.locator("#in-call")).to_be_hidden()
    page.click("#pre-devices")  # the devices live in the More panel
    # The microphone level meter moves with the fake microphone's beeps.
    poll_until(page, "document.getElementById('mic-meter').value > 0.01")
    assert page.locator("#camera-select option").count() >= 1
    assert page.locator("#mic-select option").count() >= 1
    poll_until(page, "document.getElementById('preview').videoWidth > 0")
    before = page.evaluate("window.huddleCall.state.local.id")
    camera = page.locator("#camera-select option").first.get_attribute("value")
    page.select_option("#camera-select", camera)
    page.dispatch_event("#camera-select", "change")
    poll_until(page, f"window.huddleCall.state.local.id !== {before!r}")
    poll_until(page, "document.getElementById('preview').videoWidth > 0")
    expect(page.locator("#media-error")).to_be_hidden()
    assert page.evaluate("window.huddleCall.state.local.getVideoTracks()[0].readyState") == "live"


def test_screen_share_replaces_video_and_is_announced(live_url, new_context, room, owner, member):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    bob.click("#toggle-screen")
    expect(bob.locator("#toggle-screen")).to_have_attribute("aria-pressed", "true")
    tile = alice.locator(f'#video-grid [data-peer-id="{self_id(bob)}"]')
    expect(tile.locator(".tile-icons")).to_contain_text("sharing screen")
    sent = bob.evaluate(
        "[...window.huddleCall.state.peers.values()][0].senders.get('video').track.label"
    )
    assert sent == bob.evaluate("window.huddleCall.state.screen.label")
    wait_decoding(alice, 1, above=frames(alice))
    bob.click("#toggle-screen")
    expect(tile.locator(".tile-icons")).not_to_contain_text("sharing screen")
    camera = bob.evaluate("window.huddleCall.state.local.getVideoTracks()[0].label")
    sent = bob.evaluate(
        "[...window.huddleCall.state.peers.values()][0].senders.get('video').track.label"
    )
    assert sent == camera
    wait_decoding(alice, 1, above=frames(alice))


def test_joining_muted_from_the_preview_is_seen_by_the_others(
    live_url, new_context, room, owner, member
):
    alice = open_room(new_context, live_url, owner)
    bob = open_room(new_context, live_url, member.user)
    join_call(alice)
    bob.wait_for_selector("#join-call:not([disabled])")
    bob.click("#pre-mic")
    expect(bob.locator("#pre-mic")).to_have_attribute("aria-pressed", "true")
    join_call(bob)
    expect(bob.locator("#toggle-mic")).to_have_attribute("aria-pressed", "true")
    tile = alice.locator(f'#video-grid [data-peer-id="{self_id(bob)}"]')
    expect(tile).to_have_attribute("data-audio", "false")
    assert bob.evaluate("window.huddleCall.state.local.getAudioTracks()[0].enabled") is False
    wait_decoding(alice, 1)


def test_glare_both_renegotiate_at_once_and_the_call_converges(
    live_url, new_context, room, owner, member
):
    """Perfect negotiation in the real browser: both sides offer at the same moment."""
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    restart = "for (const p of window.huddleCall.state.peers.values()) p.negotiator.restartIce()"
    for _ in range(3):
        alice.evaluate(restart)
        bob.evaluate(restart)
    settled = (
        "[...window.huddleCall.state.peers.values()].every(p => p.pc.signalingState === 'stable'"
        " && !p.negotiator.makingOffer && p.pc.connectionState === 'connected')"
    )
    for page in (alice, bob):
        poll_until(page, settled)
        wait_decoding(page, 1, above=frames(page))
    collisions = "[...window.huddleCall.state.peers.values()][0].negotiator.collisions"
    glare = alice.evaluate(collisions) + bob.evaluate(collisions)
    assert glare >= 1, "the test did not produce glare"
    assert not alice.errors and not bob.errors
