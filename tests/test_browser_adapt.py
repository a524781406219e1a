"""Adaptation mechanics in real headless Chromium against a real daphne: a send level
set through window.huddleCall reaches the receiver over the media-control channel and
really changes what it decodes; low-bandwidth mode, a hidden page and a panel over the
stage stop the others' video reaching us, and it comes back after.

The ladder deciding from a really impaired path is shown in the network lab (bin/lab);
here the levels are forced and the decisions are node-tested (tests/js/send-ladder)."""

import time

import pytest
from playwright.sync_api import expect

from tests.call_helpers import frames, join_call, open_room, self_id, wait_decoding

pytestmark = [pytest.mark.browser, pytest.mark.live]


def wait_stalled(page, *, hold: float = 2.0, timeout: float = 15.0) -> dict:
    """Until no remote video decodes a new frame for ``hold`` seconds (frames already
    in flight drain first); fails at ``timeout``."""
    deadline = time.monotonic() + timeout
    last = frames(page)
    since = time.monotonic()
    while time.monotonic() - since < hold:
        assert time.monotonic() < deadline, f"video still decoding after {timeout}s: {last}"
        page.wait_for_timeout(100)
        now = frames(page)
        if now != last:
            last, since = now, time.monotonic()
    return last


# maxBitrate/scaleResolutionDownBy/maxFramerate of the first peer's video encoding.
SENT_ENCODING = (
    "(([p]) => { const e = p?.senders.get('video')?.getParameters().encodings?.[0];"
    " return e ? `${e.maxBitrate}/${e.scaleResolutionDownBy}/${e.maxFramerate}` : null; })"
    "([...window.huddleCall.state.peers.values()])"
)


def pair(new_context, live_url, owner, member, *, viewport=None):
    """Olivia (in ``viewport`` if given) and marco in the call, each decoding the other."""
    olivia = open_room(new_context, live_url, owner, viewport=viewport)
    marco = open_room(new_context, live_url, member.user)
    join_call(olivia)
    join_call(marco)
    wait_decoding(olivia, 1, others=[marco])
    wait_decoding(marco, 1, others=[olivia])
    return olivia, marco


def test_audio_level_is_shown_on_the_receivers_tile_and_its_frames_stop(
    live_url, new_context, room, owner, member
):
    olivia, marco = pair(new_context, live_url, owner, member)
    # From the first connection, `full` sends with its own encodings (call-quality.js
    # LEVEL_ENCODINGS), not with whatever Chromium picks until a level changes.
    deadline = time.monotonic() + 10
    while (sent := marco.evaluate(SENT_ENCODING)) != "1200000/1/30":
        assert time.monotonic() < deadline, f"the video encoding stayed {sent}"
        marco.wait_for_timeout(100)
    tile = olivia.locator(f'#video-grid [data-peer-id="{self_id(marco)}"]')
    notice = tile.locator(".tile-notice")
    expect(notice).to_be_hidden()

    marco.evaluate("window.huddleCall.setSendLevel('audio', undefined, 'loss')")
    expect(notice).to_have_text("marco: audio only (poor connection)")
    expect(tile).to_have_attribute("data-remote-video", "audio")
    expect(tile.locator(".tile-initials")).to_be_visible()
    expect(tile.locator("video")).to_be_hidden()
    assert marco.evaluate("window.huddleCall.sendLevels()") == {self_id(olivia): "audio"}
    assert "step:audio:loss" in [e["event"] for e in marco.evaluate("window.huddleCall.events()")]
    olivia.screenshot(path="var/adapt-audio-only.png")
    paused = wait_stalled(olivia)
    # Audio keeps flowing while video is paused.
    audio = "Object.values(await window.huddleCall.stats()).map(s => s.packetsReceived)[0]"
    before = olivia.evaluate(f"(async () => {audio})()")
    olivia.wait_for_timeout(500)
    assert olivia.evaluate(f"(async () => {audio})()") > before, "audio stopped too"

    marco.evaluate("window.huddleCall.setSendLevel('low', undefined, 'bandwidth')")
    expect(notice).to_have_text("lower quality")
    expect(tile).to_have_attribute("data-remote-video", "low")
    wait_decoding(olivia, 1, above=paused)
    olivia.screenshot(path="var/adapt-lower-quality.png")

    marco.evaluate("window.huddleCall.setSendLevel('full', undefined, 'recovered')")
    expect(notice).to_be_hidden()
    wait_decoding(olivia, 1, above=frames(olivia))
    assert not olivia.errors and not marco.errors, (olivia.errors, marco.errors)


def test_low_bandwidth_mode_stops_the_others_video_reaching_me_and_resumes_after(
    live_url, new_context, room, owner, member
):
    olivia, marco = pair(new_context, live_url, owner, member)
    button = olivia.locator("#low-bandwidth")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.focus()
    olivia.keyboard.press("Enter")  # keyboard accessible
    expect(button).to_have_attribute("aria-pressed", "true")
    tile = olivia.locator(f'#video-grid [data-peer-id="{self_id(marco)}"]')
    expect(tile.locator(".tile-notice")).to_have_text("marco: video off (low-bandwidth mode)")
    expect(tile.locator(".tile-initials")).to_be_visible()
    paused = wait_stalled(olivia)
    olivia.screenshot(path="var/adapt-low-bandwidth.png")
    # Only the way to olivia stopped: marco still gets olivia's video.
    wait_decoding(marco, 1, above=frames(marco))
    assert marco.evaluate("window.huddleCall.sendLevels()") == {self_id(olivia): "full"}

    olivia.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", "false")
    wait_decoding(olivia, 1, above=paused)
    expect(tile.locator(".tile-notice")).to_be_hidden()


# Headless Chromium reports every page visible (another tab in front or a minimised
# window change nothing), so the page says it is hidden the way a browser would:
# document.hidden and a visibilitychange event. Everything after it is real.
HIDE = """(hidden) => {
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  Object.defineProperty(document, 'visibilityState',
    {configurable: true, get: () => hidden ? 'hidden' : 'visible'});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_a_hidden_page_stops_receiving_video_until_it_is_shown(
    live_url, new_context, room, owner, member
):
    olivia, marco = pair(new_context, live_url, owner, member)
    olivia.evaluate(HIDE, True)
    paused = wait_stalled(olivia)
    olivia.evaluate(HIDE, False)
    wait_decoding(olivia, 1, above=paused)


def test_a_panel_over_the_stage_on_a_narrow_screen_stops_video_until_closed(
    live_url, new_context, room, owner, member
):
    olivia, marco = pair(
        new_context, live_url, owner, member, viewport={"width": 420, "height": 800}
    )
    olivia.click("#toggle-chat")
    expect(olivia.locator("#panel-chat")).to_be_visible()
    paused = wait_stalled(olivia)
    olivia.click("#panel-chat [data-close-panel]")
    wait_decoding(olivia, 1, above=paused)
    # On a wide screen the chat starts open beside the stage: video keeps coming.
    expect(marco.locator("#panel-chat")).to_be_visible()
    wait_decoding(marco, 1, above=frames(marco))
