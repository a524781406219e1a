"""Moderation in real Chromium against a real daphne: kick, and the lobby end to end."""

import pytest
from playwright.sync_api import expect

from tests.call_helpers import join_call
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


def open_room(new_context, base, username, slug="standup", errors=None):
    page = new_context().new_page()
    if errors is not None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.goto(f"{base}/r/{slug}/")
    return page


# The connection badge says why (socket.js's words for close 4001).
KICKED_BADGE = "Disconnected: You were removed from this room."


def test_moderator_kicks_a_participant_who_is_told_why_and_stays_out(
    live_url, new_context, room, member
):
    errors: list[str] = []
    mod = open_room(new_context, live_url, "olivia", errors=errors)
    expect(mod.locator("#connection-state")).to_have_text("Connected")
    mod.click("#toggle-people")  # moderation lives in the People panel
    expect(mod.locator("#moderation")).to_be_visible()
    them = open_room(new_context, live_url, "marco", errors=errors)
    expect(them.locator("#connection-state")).to_have_text("Connected")
    # A participant sees no moderation controls.
    expect(them.locator("#moderation")).to_be_hidden()

    row = mod.locator(f"#mod-people li[data-member-id='{member.pk}']")
    expect(row).to_contain_text("marco")
    mod.fill("#mod-reason", "shouting")
    row.locator(".mod-kick").click()

    notice = them.locator("#mod-notice")
    expect(notice).to_have_text("You were removed from the room by olivia. Reason: shouting")
    expect(them.locator("#connection-state")).to_have_text(KICKED_BADGE)
    expect(them.locator("#online li")).to_have_count(0)
    expect(mod.locator("#online li")).to_have_count(1)
    expect(mod.locator("#mod-log")).to_contain_text("olivia removed marco (shouting)")
    # No reconnect is scheduled: the client treats 4001 as final.
    assert them.evaluate("window.huddle.socket.state") == "closed"
    assert them.evaluate("window.huddle.socket.retryTimer === undefined")

    # Reloading the page does not get them back in.
    them.reload()
    expect(them.locator("#mod-notice")).to_contain_text("removed from this room")
    expect(them.locator("#connection-state")).to_have_text(KICKED_BADGE)
    expect(mod.locator("#online li")).to_have_count(1)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_lobby_knock_and_admit_end_to_end(live_url, new_context, room, member):
    errors: list[str] = []
    mod = open_room(new_context, live_url, "olivia", errors=errors)
    expect(mod.locator("#connection-state")).to_have_text("Connected")
    mod.click("#toggle-people")
    mod.check("#mod-lobby")
    expect(mod.locator("#mod-access")).to_contain_text("lobby on")

    them = open_room(new_context, live_url, "marco", errors=errors)
    expect(them.locator("#mod-notice")).to_have_text("Waiting for a moderator to let you in…")
    expect(them.locator("#connection-state")).not_to_have_text("Connected")

    knock = mod.locator("#mod-lobby-list li", has_text="marco")
    knock.locator(".mod-admit").click()

    expect(them.locator("#connection-state")).to_have_text("Connected")
    expect(them.locator("#mod-notice")).to_be_hidden()
    expect(mod.locator("#online li")).to_have_count(2)
    expect(mod.locator("#mod-lobby-list li")).to_have_count(0)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_moderator_hides_a_message_for_everyone_and_everyone_sees_the_lock(
    live_url, new_context, room, member
):
    errors: list[str] = []
    mod = open_room(new_context, live_url, "olivia", errors=errors)
    them = open_room(new_context, live_url, "marco", errors=errors)
    for page in (mod, them):
        expect(page.locator("#connection-state")).to_have_text("Connected")
    them.fill("#chat-input", "buy cheap pills")
    them.click("#chat-send")
    message = mod.locator("#chat-messages li.chat-message", has_text="buy cheap pills")
    expect(message).to_have_count(1)
    # Only moderators get the button.
    expect(them.locator("#chat-messages .mod-hide")).to_have_count(0)
    message.locator(".mod-hide").click()
    for page in (mod, them):
        expect(page.locator("#chat-messages")).not_to_contain_text("buy cheap pills")
        expect(page.locator("#chat-messages")).to_contain_text("message hidden by a moderator")
    # After a reload the message stays hidden (history, not only the live view).
    them.reload()
    expect(them.locator("#connection-state")).to_have_text("Connected")
    expect(them.locator("#chat-messages")).to_contain_text("message hidden by a moderator")
    expect(them.locator("#chat-messages")).not_to_contain_text("buy cheap pills")

    mod.click("#toggle-people")
    mod.check("#mod-lock")
    expect(them.locator("#mod-public-access")).to_have_text("This room is locked.")
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_room_password_is_asked_for_and_lets_the_participant_in(
    live_url, new_context, room, member
):
    errors: list[str] = []
    mod = open_room(new_context, live_url, "olivia", errors=errors)
    expect(mod.locator("#connection-state")).to_have_text("Connected")
    mod.click("#toggle-people")
    mod.fill("#mod-password", "sesame-42")
    mod.click("#mod-password-form button[type=submit]")
    expect(mod.locator("#mod-access")).to_contain_text("password required")

    them = open_room(new_context, live_url, "marco", errors=errors)
    expect(them.locator("#room-password-prompt")).to_be_visible()
    them.fill("#room-password-input", "not-it")
    them.click("#room-password-prompt button[type=submit]")
    expect(them.locator("#mod-notice")).to_have_text("Wrong password.")
    expect(them.locator("#room-password-prompt")).to_be_visible()
    them.fill("#room-password-input", "sesame-42")
    them.click("#room-password-prompt button[type=submit]")
    expect(them.locator("#connection-state")).to_have_text("Connected")
    expect(them.locator("#room-password-prompt")).to_be_hidden()
    expect(mod.locator("#online li")).to_have_count(2)
    # The prompt stopped and restarted the socket: the call page is not over.
    join_call(them)
    assert not [e for e in errors if "Content Security Policy" in e], errors
