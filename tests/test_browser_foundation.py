"""A newcomer's first minutes, in real Chromium against a real daphne."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


def sign_up(page, base, username):
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Your rooms")


def test_sign_up_create_room_invite_second_person_both_listed(live_url, new_context):
    alice = new_context().new_page()
    errors: list[str] = []
    alice.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_up(alice, live_url, "alice")
    alice.click("text=Create your first room")
    alice.fill("#id_name", "Design review")
    alice.click("main button[type=submit]")
    expect(alice).to_have_url(re.compile(r"/r/design-review/$"))
    expect(alice.locator("#connection-state")).to_have_text("Connected")
    invite_url = alice.input_value("#invite-link")

    bob = new_context().new_page()
    bob.goto(invite_url)
    bob.click("main >> text=Sign up")
    bob.fill("#id_username", "bob")
    bob.fill("#id_password1", PASSWORD)
    bob.fill("#id_password2", PASSWORD)
    bob.click("main button[type=submit]")
    # Signing up from an invite (a POST bob made on purpose) joins the room at once.
    expect(bob).to_have_url(re.compile(r"/r/design-review/$"))
    expect(bob.locator("#connection-state")).to_have_text("Connected")

    for page in (alice, bob):
        expect(page.locator("#online li")).to_have_count(2)
        expect(page.locator("#online")).to_contain_text("alice")
        expect(page.locator("#online")).to_contain_text("bob")
        expect(page.locator("#members li")).to_have_count(2)

    bob.close()
    expect(alice.locator("#online li")).to_have_count(1)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_guest_joins_by_invite_link_and_is_listed(live_url, new_context, room, invite):
    owner = new_context().new_page()
    owner.goto(f"{live_url}/accounts/login/")
    owner.fill("#id_username", "olivia")
    owner.fill("#id_password", PASSWORD)
    owner.click("main button[type=submit]")
    owner.goto(f"{live_url}/r/{room.slug}/")
    expect(owner.locator("#connection-state")).to_have_text("Connected")

    guest = new_context().new_page()
    guest.goto(f"{live_url}/i/{invite.token}/")
    guest.fill("#id_display_name", "<b>Gina</b>")
    guest.click("text=Join as guest")
    expect(guest.locator("#connection-state")).to_have_text("Connected")
    # Text is escaped, never rendered as markup.
    expect(owner.locator("#online")).to_contain_text("<b>Gina</b>")
    assert owner.locator("#online b").count() == 0
