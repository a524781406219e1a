"""Refusals at connect reach the client as their documented close codes.

Proven against the real daphne, with a raw client and with Chromium's own
WebSocket driven by socket.js: a close before accept() is an HTTP 403 there,
which the browser reports as 1006 with no code (WebsocketCommunicator hides it).
"""

import json

import pytest

from tests.fixtures import rawsocket
from tests.fixtures.sockets import session_cookie_for
from videochat.closecodes import CloseCode

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


async def test_refusals_are_close_codes_not_a_handshake_403(live_url, room, member, outsider):
    cases = [
        ("nowhere", await session_cookie_for(member.user), CloseCode.NO_SUCH_ROOM),
        ("standup", None, CloseCode.UNAUTHENTICATED),
        ("standup", await session_cookie_for(outsider), CloseCode.FORBIDDEN),
    ]
    for slug, cookie, expected in cases:
        ws = await rawsocket.connect(live_url, cookie=cookie, slug=slug)
        code, frames = await rawsocket.close_code(ws)
        assert (code, frames) == (expected, []), slug


# What the page does with each refusal: socket.js reports the code and a reason
# through onState (the callback the UI renders) and does not reconnect.
PROBE = """async ([url, waitMs]) => {
  const { RoomSocket } = await import("/static/js/socket.js");
  const states = [];
  let opened = 0;
  class Counting extends WebSocket {
    constructor(u) { super(u); opened += 1; }
  }
  const socket = new RoomSocket(url, { WebSocketImpl: Counting, backoff: { base: 50, cap: 100 } });
  socket.onState((state, detail) => states.push([state, detail.code ?? null, detail.reason ?? ""]));
  socket.start();
  const deadline = Date.now() + 10000;
  while (!states.some(([s]) => s === "closed") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // Long enough for several reconnects at this backoff, had there been any.
  await new Promise((r) => setTimeout(r, waitMs));
  return { states, opened };
}"""


@pytest.mark.browser
def test_the_browser_sees_each_refusal_code_and_socket_js_stops(
    live_url, new_context, room, member, outsider
):
    from django.test import Client

    client = Client()
    client.force_login(outsider)
    cookie = client.cookies["sessionid"].value
    ws_base = live_url.replace("http://", "ws://")
    for slug, logged_in, expected, words in [
        ("standup", False, CloseCode.UNAUTHENTICATED, "log in"),
        ("standup", True, CloseCode.FORBIDDEN, "not a member"),
        ("nowhere", True, CloseCode.NO_SUCH_ROOM, "no such room"),
    ]:
        context = new_context()
        if logged_in:
            context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_url}])
        page = context.new_page()
        page.goto(f"{live_url}/accounts/login/")
        result = page.evaluate(PROBE, [f"{ws_base}/ws/rooms/{slug}/", 600])
        closed = [s for s in result["states"] if s[0] == "closed"]
        assert closed and closed[0][1] == expected, json.dumps(result)
        assert words in closed[0][2].lower(), json.dumps(result)
        assert result["opened"] == 1, f"socket.js reconnected after {expected}: {result}"
        context.close()
