"""Chat in real Chromium against a real daphne: the outbox through a dead socket and a reload."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]

WS = re.compile(r".*/ws/rooms/.*")


class SocketSwitch:
    """Routes the page's room socket through Playwright so the test can cut it."""

    def __init__(self, page):
        self.down = False
        self.open: list = []
        page.route_web_socket(WS, self.handle)

    def handle(self, ws):
        if self.down:
            ws.close(code=4999, reason="test: network down")
            return
        server = ws.connect_to_server()
        self.open.append((ws, server))

    def cut(self):
        self.down = True
        for ws, server in self.open:
            server.close()
            ws.close(code=4999, reason="test: network down")
        self.open.clear()

    def restore(self):
        self.down = False


def log_in(page, base, username, slug):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.goto(f"{base}/r/{slug}/")
    expect(page.locator("#connection-state")).to_have_text("Connected")


def send(page, text):
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def test_message_typed_offline_shows_sending_and_is_delivered_once(
    live_url, new_context, room, member
):
    alice = new_context().new_page()
    switch = SocketSwitch(alice)
    log_in(alice, live_url, "olivia", room.slug)
    marco = new_context().new_page()
    log_in(marco, live_url, "marco", room.slug)

    send(alice, "before <i>the cut</i>")
    expect(marco.locator("#chat-messages li")).to_have_count(1)
    expect(marco.locator("#chat-messages li .chat-body")).to_have_text("before <i>the cut</i>")
    assert marco.locator("#chat-messages i").count() == 0  # text, never markup

    switch.cut()
    expect(alice.locator("#connection-state")).to_have_text("Reconnecting…")
    send(alice, "typed while offline")
    pending = alice.locator("#chat-outbox li")
    expect(pending).to_have_count(1)
    expect(pending).to_have_attribute("data-status", "sending")
    expect(pending.locator(".chat-status")).to_have_text("sending…")

    switch.restore()
    expect(alice.locator("#connection-state")).to_have_text("Connected", timeout=20000)
    for page in (alice, marco):
        expect(page.locator("#chat-messages li")).to_have_count(2)
        expect(page.locator("#chat-messages li").nth(1).locator(".chat-body")).to_have_text(
            "typed while offline"
        )
    expect(alice.locator("#chat-outbox li")).to_have_count(0)
    expect(alice.locator("#chat-messages li").nth(1)).to_have_attribute("data-status", "sent")
    from messaging.models import Message

    assert list(Message.objects.values_list("seq", "body")) == [
        (1, "before <i>the cut</i>"),
        (2, "typed while offline"),
    ]


def test_reload_with_an_unsent_message_still_delivers_it_once(live_url, new_context, room, member):
    alice = new_context().new_page()
    switch = SocketSwitch(alice)
    log_in(alice, live_url, "olivia", room.slug)
    marco = new_context().new_page()
    log_in(marco, live_url, "marco", room.slug)

    switch.cut()
    send(alice, "survives the reload")
    expect(alice.locator("#chat-outbox li")).to_have_attribute("data-status", "sending")
    alice.reload()
    # Still offline after the reload: the message is back from the outbox, still sending.
    expect(alice.locator("#chat-outbox li .chat-body")).to_have_text("survives the reload")
    expect(alice.locator("#chat-outbox li")).to_have_attribute("data-status", "sending")

    switch.restore()
    expect(alice.locator("#connection-state")).to_have_text("Connected", timeout=20000)
    for page in (alice, marco):
        expect(page.locator("#chat-messages li .chat-body")).to_have_text(["survives the reload"])
    expect(alice.locator("#chat-outbox li")).to_have_count(0)
    # Reloading again does not resend: the outbox is empty once acknowledged.
    alice.reload()
    expect(alice.locator("#connection-state")).to_have_text("Connected")
    expect(alice.locator("#chat-messages li .chat-body")).to_have_text(["survives the reload"])
    expect(alice.locator("#chat-outbox li")).to_have_count(0)
    from messaging.models import Message

    assert Message.objects.count() == 1


def test_late_joiner_pages_history_backwards_on_scroll(live_url, new_context, room, member, owner):
    from messaging import services

    author = room.memberships.get(user=owner)
    for i in range(1, 121):
        services.message_create(
            room_id=room.pk, author_id=author.pk, body=f"line {i}", client_id=f"c{i}"
        )
    marco = new_context().new_page()
    log_in(marco, live_url, "marco", room.slug)
    items = marco.locator("#chat-messages li")
    expect(items).to_have_count(50)
    expect(items.last.locator(".chat-body")).to_have_text("line 120")
    marco.locator("#chat-scroll").evaluate("el => { el.scrollTop = 0; }")
    expect(items).to_have_count(100)
    marco.locator("#chat-scroll").evaluate("el => { el.scrollTop = 0; }")
    expect(items).to_have_count(120)
    expect(items.first.locator(".chat-body")).to_have_text("line 1")


def test_typing_indicator_shows_who_is_typing(live_url, new_context, room, member):
    alice = new_context().new_page()
    log_in(alice, live_url, "olivia", room.slug)
    marco = new_context().new_page()
    log_in(marco, live_url, "marco", room.slug)
    alice.type("#chat-input", "hel")
    expect(marco.locator("#chat-typing")).to_have_text("olivia is typing…")
    alice.press("#chat-input", "Enter")
    expect(marco.locator("#chat-typing")).to_have_text("")


def test_a_refused_message_shows_failed_with_retry_and_discard_and_is_not_resent(
    live_url, new_context, room, member
):
    alice = new_context().new_page()
    frames: list[str] = []
    alice.on("websocket", lambda ws: ws.on("framesent", lambda f: frames.append(str(f))))
    log_in(alice, live_url, "olivia", room.slug)
    send(alice, "look \u202eexe.gnp")  # a bidi override: refused with bad_request
    pending = alice.locator("#chat-outbox li")
    expect(pending).to_have_count(1)
    expect(pending.locator(".chat-status")).to_contain_text("failed")
    expect(pending.locator(".chat-retry")).to_be_visible()
    expect(pending.locator(".chat-discard")).to_be_visible()
    sent = sum("chat.send" in f for f in frames)
    # Failed means waiting for the user: a reload does not resend it either.
    alice.reload()
    expect(alice.locator("#connection-state")).to_have_text("Connected")
    expect(alice.locator("#chat-outbox li .chat-status")).to_contain_text("failed")
    assert sum("chat.send" in f for f in frames) == sent
    alice.locator("#chat-outbox li .chat-discard").click()
    expect(alice.locator("#chat-outbox li")).to_have_count(0)
    keys = alice.evaluate("Object.keys(localStorage).filter(k => k.startsWith('huddle.outbox'))")
    assert keys == []
    send(alice, "plain words")
    expect(alice.locator("#chat-messages li .chat-body")).to_have_text(["plain words"])
