"""Call seats in real Chromium against a real daphne: a member's second tab takes the
call over from the first, which goes back to the preview with a reason and keeps chat."""

import pytest
from playwright.sync_api import expect

from tests.call_helpers import join_call, open_room, self_id, wait_decoding

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_second_tab_takes_over_the_call_and_the_first_says_why(
    live_url, new_context, room, owner, member
):
    alice = open_room(new_context, live_url, owner)
    first = open_room(new_context, live_url, member.user)
    join_call(alice)
    join_call(first)
    wait_decoding(alice, 1)
    first_id = self_id(first)

    second = open_room(new_context, live_url, member.user)
    join_call(second)
    # The first tab leaves the call (not the room) and says why.
    expect(first.locator("#prejoin")).to_be_visible()
    expect(first.locator("#call-status")).to_contain_text("another tab")
    expect(first.locator("#connection-state")).to_have_attribute("data-state", "open")
    # The others now see the second tab in the call, not the first.
    wait_decoding(second, 1)
    expect(alice.locator(f'#video-grid [data-peer-id="{first_id}"]')).to_have_count(0)
    expect(alice.locator(f'#video-grid [data-peer-id="{self_id(second)}"]')).to_have_count(1)
    for page in (alice, first, second):
        assert not page.errors, page.errors
