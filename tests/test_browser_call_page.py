"""The call page as people use it, in real headless Chromium against a real daphne:
clear ends (removed, banned, left and back without a reload), honest network state
(offline and back, a dead socket noticed), the lobby, devices switched mid-call,
hands and reactions, an unmirrored screen share, the layout at laptop and phone
sizes (screenshots saved in var/artifacts/) and the axe-core check."""

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.a11y import assert_accessible
from tests.call_helpers import (
    WATCH_LEAVES,
    frames,
    join_call,
    open_room,
    self_id,
    two_in_call,
    wait_decoding,
)
from tests.fixtures.live import daphne_service

pytestmark = [pytest.mark.browser, pytest.mark.live]

ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "artifacts"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Every track the page holds now, so the test can check later that each one stopped.
HOLD_TRACKS = "window.heldTracks = window.huddleCall.state.local.getTracks()"
ALL_STOPPED = "window.heldTracks.every(t => t.readyState === 'ended')"


def person_row(page, member):
    page.click("#toggle-people")
    return page.locator(f"#mod-people li[data-member-id='{member.pk}']")


def test_removed_person_call_ends_media_stops_and_they_read_who_why_and_when(
    live_url, new_context, room, owner, member
):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    bob.evaluate(HOLD_TRACKS)
    row = person_row(alice, member)
    alice.fill("#mod-reason", "shouting")
    # Per-person buttons name the person.
    row.get_by_role("button", name="Remove marco").click()

    expect(bob.locator("#left")).to_be_visible()
    expect(bob.locator("#end-text")).to_have_text(
        "olivia removed you from this room. Reason: shouting. "
        "You can come back in 5 minutes with the room's link."
    )
    expect(bob.locator("#rejoin")).to_be_hidden()
    assert bob.evaluate(ALL_STOPPED), "camera and microphone still on"
    assert bob.evaluate("window.huddleCall.state.peers.size") == 0
    expect(alice.locator("#video-grid .tile")).to_have_count(1)
    # A reload does not offer a way back in.
    bob.reload()
    expect(bob.locator("#end-text")).to_contain_text("removed you from this room")
    expect(bob.locator("#join-call")).to_be_disabled()


def test_banned_person_is_told_they_cannot_come_back(live_url, new_context, room, owner, member):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    bob.evaluate(HOLD_TRACKS)
    person_row(alice, member).get_by_role("button", name="Ban marco").click()
    expect(bob.locator("#end-text")).to_have_text(
        "olivia banned you from this room. You cannot come back unless a moderator lifts the ban."
    )
    assert bob.evaluate(ALL_STOPPED)
    expect(bob.locator("#rejoin")).to_be_hidden()
    expect(alice.locator("#video-grid .tile")).to_have_count(1)


def test_leave_keeps_the_chat_and_rejoin_needs_no_reload(
    live_url, new_context, room, owner, member
):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    bob_id = self_id(bob)
    bob.evaluate(HOLD_TRACKS)
    bob.evaluate("window.loads = performance.getEntriesByType('navigation').length")
    bob.click("#leave-call")
    expect(bob.locator("#end-text")).to_have_text("You left the call. The chat stays open here.")
    assert bob.evaluate(ALL_STOPPED)
    expect(alice.locator("#video-grid .tile")).to_have_count(1)
    # The room socket, and so the chat, stayed.
    expect(bob.locator("#connection-state")).to_have_text("Connected")
    bob.fill("#chat-input", "still here after leaving")
    bob.press("#chat-input", "Enter")
    expect(alice.locator("#chat-messages .chat-body")).to_have_text(["still here after leaving"])
    expect(bob.locator("#chat-messages li .chat-status")).to_have_text("sent")

    bob.click("#rejoin")
    expect(bob.locator("#in-call")).to_be_visible()
    assert self_id(bob) == bob_id, "same page, same session: no reload"
    wait_decoding(bob, 1, above=frames(bob))
    wait_decoding(alice, 1)
    expect(alice.locator("#video-grid .tile")).to_have_count(2)


def _net_log(page) -> None:
    page.evaluate(
        "window.netlog = [];"
        "window.huddle.socket.onState(s => window.netlog.push([s, Date.now()]));"
        "addEventListener('online', () => window.netlog.push(['online-event', Date.now()]));"
    )


def test_offline_is_said_at_once_and_back_online_reconnects_within_2_s(
    live_url, new_context, room, owner, member
):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    before = frames(alice)
    _net_log(bob)
    bob.context.set_offline(True)
    expect(bob.locator("#connection-state")).to_have_text("You are offline", timeout=1000)
    expect(bob.locator("#call-status")).to_contain_text("You are offline")
    # Typed while offline: honestly pending, sent once back.
    bob.fill("#chat-input", "typed offline")
    bob.press("#chat-input", "Enter")
    expect(bob.locator("#chat-outbox li .chat-status")).to_have_text("sending…")
    # Peer-to-peer media does not need the server: alice still sees bob.
    wait_decoding(alice, 1, above=before)
    bob.wait_for_timeout(3000)
    bob.context.set_offline(False)
    expect(bob.locator("#connection-state")).to_have_text("Connected", timeout=10000)
    log = bob.evaluate("window.netlog")
    online_at = next(t for s, t in log if s == "online-event")
    open_at = next(t for s, t in log if s == "open" and t >= online_at)
    assert open_at - online_at < 2000, f"reconnected {open_at - online_at} ms after online: {log}"
    print(f"reconnected {open_at - online_at} ms after the online event")
    expect(alice.locator("#chat-messages .chat-body")).to_have_text(["typed offline"])
    wait_decoding(alice, 1, above=frames(alice))
    expect(alice.locator("#video-grid .tile")).to_have_count(2)


def test_a_dead_socket_is_noticed_within_5_s(live_url, new_context, room, owner, member):
    """The socket stalls (nothing in or out, no close, the browser still online): the
    heartbeat's deadline notices within 5 s, and the session resumes."""
    stall = {"on": False}

    def route(ws):
        server = ws.connect_to_server()
        ws.on_message(lambda m: None if stall["on"] else server.send(m))
        server.on_message(lambda m: None if stall["on"] else ws.send(m))

    alice = open_room(new_context, live_url, owner)
    bob = open_room(new_context, live_url, member.user, route=route)
    join_call(alice)
    join_call(bob)
    wait_decoding(bob, 1)
    bob_id = self_id(bob)
    _net_log(bob)
    stalled_at = bob.evaluate("Date.now()")
    stall["on"] = True
    expect(bob.locator("#connection-state")).not_to_have_text("Connected", timeout=10000)
    stall["on"] = False  # the next socket gets through
    log = bob.evaluate("window.netlog")
    noticed = next(t for s, t in log if s == "reconnecting")
    assert noticed - stalled_at < 5000, f"noticed after {noticed - stalled_at} ms: {log}"
    print(f"dead socket noticed {noticed - stalled_at} ms after the stall")
    expect(bob.locator("#connection-state")).to_have_text("Connected", timeout=20000)
    assert self_id(bob) == bob_id
    wait_decoding(alice, 1, above=frames(alice))


def test_a_peer_the_server_lost_keeps_its_tile_while_its_media_flows(
    live_url, new_context, room, owner, member
):
    """Bob's socket is cut and kept out past the resume grace (3 s on this server): the
    server says he timed out, but his video still arrives peer to peer, so alice keeps
    his tile. When he is back under a new peer id, the old tile goes and the new one
    connects."""
    web = daphne_service(CALL_RESUME_GRACE_S="3").start()
    outage: dict = {"on": False, "routes": []}

    def route(ws):
        if outage["on"]:
            ws.close(code=4000, reason="test outage")
            return
        outage["routes"].append(ws.connect_to_server())

    try:
        base = f"http://127.0.0.1:{web.port}"
        alice = open_room(new_context, base, owner)
        alice.evaluate(WATCH_LEAVES)
        bob = open_room(new_context, base, member.user, route=route)
        join_call(alice)
        join_call(bob)
        before = wait_decoding(alice, 1)
        bob_id = self_id(bob)
        outage["on"] = True
        outage["routes"][-1].close(code=4000, reason="test cut")
        deadline = time.monotonic() + 30
        while not alice.evaluate("window.leaves.length"):
            assert time.monotonic() < deadline, "the server never gave up on bob"
            alice.wait_for_timeout(200)
        assert alice.evaluate("window.leaves") == [
            {"type": "presence.leave", "peer_id": bob_id, "reason": "timeout"}
        ]
        old_tile = alice.locator(f'#video-grid [data-peer-id="{bob_id}"]')
        during = wait_decoding(alice, 1, above=before)
        wait_decoding(alice, 1, above=during)  # across more than one stats sample
        expect(old_tile).to_have_count(1)
        assert alice.evaluate("window.huddleCall.state.lingering.size") == 1

        outage["on"] = False
        expect(bob.locator("#connection-state")).to_have_text("Connected", timeout=30000)
        new_id = self_id(bob)
        assert new_id != bob_id, "the session was over: a new peer id"
        expect(old_tile).to_have_count(0)
        wait_decoding(alice, 1, timeout=30)
        assert set(frames(alice)) == {new_id}
        expect(alice.locator("#video-grid .tile")).to_have_count(2)
    finally:
        web.stop()


def test_lobby_guest_waits_with_join_disabled_and_the_owner_admits_from_a_toast(
    live_url, new_context, room, owner, member
):
    alice = open_room(new_context, live_url, owner)
    alice.click("#toggle-people")
    alice.check("#mod-lobby")
    expect(alice.locator("#mod-access")).to_contain_text("lobby on")
    title = alice.title()

    bob = open_room(new_context, live_url, member.user, wait=False)
    expect(bob.locator("#join-why")).to_have_text("Waiting for a moderator to let you in…")
    expect(bob.locator("#join-call")).to_be_disabled()

    toast = alice.locator("#toasts .knock-toast", has_text="marco is waiting to join.")
    expect(toast).to_be_visible()
    assert alice.title() == f"(1) {title}"
    toast.get_by_role("button", name="Admit marco").click()

    expect(bob.locator("#connection-state")).to_have_text("Connected")
    expect(bob.locator("#join-call")).to_be_enabled()
    expect(bob.locator("#join-why")).to_have_text("")
    expect(alice.locator("#toasts .knock-toast")).to_have_count(0)
    assert alice.title() == title
    join_call(bob)


def test_switching_microphone_and_camera_mid_call_keeps_media_flowing(
    live_url, new_context, room, owner, member
):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    bob.click("#toggle-more")
    sent = "[...window.huddleCall.state.peers.values()][0].senders.get('{kind}').track.id"
    for select, kind in (("#mic-select", "audio"), ("#camera-select", "video")):
        old = bob.evaluate(sent.format(kind=kind))
        options = bob.locator(f"{select} option")
        choice = options.nth(options.count() - 1).get_attribute("value")
        bob.select_option(select, choice)
        deadline = time.monotonic() + 15
        while bob.evaluate(sent.format(kind=kind)) == old:
            assert time.monotonic() < deadline, f"the {kind} sender kept its old track"
            bob.wait_for_timeout(100)
        getter = "getAudioTracks" if kind == "audio" else "getVideoTracks"
        local = f"window.huddleCall.state.local.{getter}()[0].id"
        assert bob.evaluate(sent.format(kind=kind)) == bob.evaluate(local)
        wait_decoding(alice, 1, above=frames(alice))
    assert bob.evaluate("window.huddleCall.state.peers.size") == 1
    assert bob.evaluate("window.huddleCall.state.rebuilds") == 0, "no reconnect needed"


def test_raised_hand_and_reactions_are_seen_by_the_others(
    live_url, new_context, room, owner, member
):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    # Keyboard shortcuts: M microphone, V camera, H hand.
    bob.keyboard.press("m")
    expect(bob.locator("#toggle-mic")).to_have_attribute("aria-pressed", "true")
    bob.keyboard.press("v")
    expect(bob.locator("#toggle-cam")).to_have_attribute("aria-pressed", "true")
    tile = alice.locator(f'#video-grid [data-peer-id="{self_id(bob)}"]')
    expect(tile).to_have_attribute("data-audio", "false")
    expect(tile.locator(".tile-initials")).to_be_visible()  # camera off: initials
    expect(tile.locator(".tile-initials")).to_have_text("M")
    bob.keyboard.press("h")
    expect(bob.locator("#toggle-hand")).to_have_attribute("aria-pressed", "true")
    expect(alice.locator("#hand-queue li > span")).to_have_text(["marco"])
    expect(bob.locator("#hand-queue li > span")).to_have_text(["marco (you)"])
    expect(tile.locator(".tile-hand")).to_be_visible()
    # The owner lowers it from the queue.
    alice.click("#toggle-people")
    alice.get_by_role("button", name="Lower marco's hand").click()
    expect(bob.locator("#toggle-hand")).to_have_attribute("aria-pressed", "false")
    expect(alice.locator("#hand-queue li")).to_have_count(0)

    bob.click("#toggle-reactions")
    bob.get_by_role("button", name="React 🎉").click()
    expect(alice.locator("#reaction-layer .reaction-float")).to_contain_text("🎉marco")


def test_own_screen_share_is_not_mirrored_and_others_see_it_whole(
    live_url, new_context, room, owner, member
):
    alice, bob = two_in_call(new_context, live_url, owner, member.user)
    bob.click("#toggle-screen")
    own = bob.locator(f'#video-grid [data-peer-id="{self_id(bob)}"]')
    expect(own).to_have_attribute("data-screen", "true")
    assert own.locator("video").evaluate("v => getComputedStyle(v).transform") == "none"
    theirs = alice.locator(f'#video-grid [data-peer-id="{self_id(bob)}"]')
    expect(theirs).to_have_attribute("data-screen", "true")
    assert theirs.locator("video").evaluate("v => getComputedStyle(v).objectFit") == "contain"
    # Shown large: the shared screen is the spotlight.
    expect(alice.locator("#video-grid")).to_have_attribute("data-layout", "spotlight")
    wait_decoding(alice, 1, above=frames(alice))
    bob.click("#toggle-screen")
    expect(own).to_have_attribute("data-screen", "false")
    assert "matrix(-1" in own.locator("video").evaluate("v => getComputedStyle(v).transform")


def test_closed_chat_counts_unread_and_links_open_safely(
    live_url, new_context, room, owner, member
):
    alice = open_room(new_context, live_url, owner)
    bob = open_room(new_context, live_url, member.user)
    alice.keyboard.press("c")  # the chat starts open on a wide screen: C closes it
    expect(alice.locator("#panel-chat")).to_be_hidden()
    bob.fill("#chat-input", "see https://example.com/x?a=1. not javascript:alert(1)")
    bob.press("#chat-input", "Enter")
    bob.fill("#chat-input", "second")
    bob.press("#chat-input", "Enter")
    expect(alice.locator("#chat-unread")).to_have_text("2")
    alice.click("#toggle-chat")
    expect(alice.locator("#chat-unread")).to_be_hidden()
    link = alice.locator("#chat-messages .chat-body a")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", "https://example.com/x?a=1")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(alice.locator("#chat-messages .chat-body").first).to_have_text(
        "see https://example.com/x?a=1. not javascript:alert(1)"
    )


def _inside_viewport(page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None, f"{selector} is not shown"
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= size["width"] + 0.5, (selector, box, size)
    assert box["y"] + box["height"] <= size["height"] + 0.5, (selector, box, size)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280x800", "390x844"])
def test_layout_fits_the_screen_with_1_2_and_3_people(
    live_url, new_context, room, owner, member, django_user_model, invite, viewport
):
    from rooms import services
    from tests.conftest import make_user

    carol = make_user(django_user_model, "carol")
    services.membership_join(invite=invite, user=carol)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = []
    for n, user in enumerate((owner, member.user, carol), start=1):
        page = open_room(new_context, live_url, user, viewport=viewport)
        join_call(page)
        pages.append(page)
        first = pages[0]
        if n > 1:
            wait_decoding(first, n - 1, timeout=30)
        expect(first.locator("#video-grid .tile")).to_have_count(n)
        if not first.locator("#panel-chat").is_visible():
            first.click("#toggle-chat")
        expect(first.locator("#panel-chat")).to_be_visible()
        expect(first.locator("#toggle-chat")).to_have_attribute("aria-pressed", "true")
        for selector in ("#control-bar", "#panel-chat", "#chat-input", "#leave-call"):
            _inside_viewport(first, selector)
        # Nothing below the fold: the page itself does not scroll.
        assert first.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
        name = f"call-{viewport['width']}x{viewport['height']}-{n}p"
        first.screenshot(path=str(ARTIFACTS / f"{name}-chat.png"))
        # With the chat closed the grid takes the stage.
        first.click("#toggle-chat")
        expect(first.locator("#panel-chat")).to_be_hidden()
        _inside_viewport(first, "#video-grid")
        _inside_viewport(first, "#control-bar")
        tile = first.locator("#video-grid .tile").first.bounding_box()
        wide = 380 if viewport is LAPTOP else 300
        assert tile and tile["width"] >= wide, f"tiles use the space: {tile}"
        first.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_axe_finds_no_serious_violation_on_the_prejoin_and_call_pages(
    live_url, new_context, room, owner, member
):
    alice = open_room(new_context, live_url, owner)
    alice.wait_for_selector("#join-call:not([disabled])")
    assert_accessible(alice, "pre-join")
    alice.click("#pre-devices")
    assert_accessible(alice, "pre-join with the devices panel")
    bob = open_room(new_context, live_url, member.user)
    join_call(alice)
    join_call(bob)
    wait_decoding(alice, 1)
    alice.click("#toggle-chat")  # from the More panel the pre-join opened
    expect(alice.locator("#panel-chat")).to_be_visible()
    assert_accessible(alice, "call (chat open)")
    alice.click("#toggle-people")
    assert_accessible(alice, "call (people and moderation open)")
