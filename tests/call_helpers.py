"""Shared by the call browser tests and bench/call_*: log people in, join the call,
read getStats from the page, run a private coturn."""

import time

from django.test import Client
from playwright.sync_api import expect

from videochat.devstack import coturn_service

__all__ = ["coturn_service"]  # moved to videochat.devstack (the network lab starts it too)


def login_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def open_room(
    new_context, base: str, user, slug: str = "standup", *, route=None, viewport=None, wait=True
):
    """A page of ``user`` in the room with the socket connected (not yet in the call);
    ``wait=False`` returns as soon as the page loaded (a lobby never connects)."""
    ctx = new_context(viewport=viewport) if viewport else new_context()
    ctx.add_cookies([{"name": "sessionid", "value": login_cookie(user), "url": base}])
    page = ctx.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    if route is not None:
        page.route_web_socket("**/ws/rooms/**", route)
    page.goto(f"{base}/r/{slug}/")
    if wait:
        page.wait_for_selector("#connection-state[data-state=open]")
    return page


def join_call(page) -> None:
    page.wait_for_selector("#join-call:not([disabled])")
    page.click("#join-call")
    page.wait_for_selector("#in-call", state="visible")
    page.wait_for_selector("#prejoin", state="hidden")


def two_in_call(new_context, base: str, first_user, second_user, *, timeout: float = 20.0, **kw):
    """Two pages in the room (``kw`` as open_room takes it), both in the call, each
    decoding the other's video within ``timeout``; a failure shows both pages'
    signaling traces."""
    first = open_room(new_context, base, first_user, **kw)
    second = open_room(new_context, base, second_user, **kw)
    join_call(first)
    join_call(second)
    wait_decoding(first, 1, timeout=timeout, others=[second])
    wait_decoding(second, 1, timeout=timeout, others=[first])
    return first, second


def frames(page) -> dict[str, int]:
    """framesDecoded per remote peer id, as the page's getStats reports it."""
    stats = page.evaluate("window.huddleCall.stats()")
    return {peer: s["framesDecoded"] for peer, s in stats.items()}


LAST_TRACE = "window.huddleCall.trace.slice(-40)"
# What else tells stalled media apart: the last recovery and ladder events, what the page
# sends each peer, and its inbound numbers per peer.
MEDIA_STATE = """async () => ({
  events: window.huddleCall.events().slice(-12).map((e) => `${e.peer} ${e.event}`),
  levels: window.huddleCall.sendLevels(),
  theyWantVideo: [...window.huddleCall.state.peers.values()].map((p) => p.remoteWantsVideo),
  stats: await window.huddleCall.stats(),
})"""


def wait_decoding(
    page, peers: int, *, timeout: float = 20.0, above: dict | None = None, others=(), each=None
) -> dict:
    """Until ``peers`` remote videos decode frames (beyond ``above`` if given); ``each()``
    runs before every look (a test that keeps a network fault in step with the pages).

    A failure shows the page's signaling trace and those of the ``others`` pages (the
    page itself among them is left out: its trace is shown once)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        if each is not None:
            each()
        seen = frames(page)
        base = above or {}
        rising = [p for p, n in seen.items() if n > base.get(p, 0)]
        if len(seen) == peers and len(rising) == peers:
            return seen
        page.wait_for_timeout(100)
    # The page's last signaling events, to tell a stuck negotiation from stalled media.
    trace = page.evaluate(LAST_TRACE)
    others = [other for other in others if other is not page]
    theirs = [(other.evaluate(LAST_TRACE), other.evaluate(MEDIA_STATE)) for other in others]
    raise AssertionError(
        f"not decoding from {peers} peers in {timeout}s: {seen} (before {above}); "
        f"signaling trace: {trace}\nmedia: {page.evaluate(MEDIA_STATE)}"
        + "".join(f"\nother page's trace: {t}\nits media: {m}" for t, m in theirs)
    )


def assert_ice_restart_renegotiates(offerer, answerer, *, timeout: float = 15.0) -> None:
    """Signaling works end to end: an ICE restart from ``offerer`` is answered (its
    connection back to stable) and ``answerer`` still decodes frames after it."""
    offers = "[...window.huddleCall.state.peers.values()][0].negotiator.offersSent"
    stable = "[...window.huddleCall.state.peers.values()][0].pc.signalingState === 'stable'"
    sent = offerer.evaluate(offers)
    offerer.evaluate(
        "for (const p of window.huddleCall.state.peers.values()) p.negotiator.restartIce()"
    )
    deadline = time.monotonic() + timeout
    while not (offerer.evaluate(offers) > sent and offerer.evaluate(stable)):
        assert time.monotonic() < deadline, "the ICE restart was not renegotiated"
        offerer.wait_for_timeout(100)
    wait_decoding(answerer, 1, above=frames(answerer))


# Records every presence.leave the page sees (window.leaves), for assert_resumed_unseen.
WATCH_LEAVES = (
    "window.leaves = []; window.huddle.socket.on('presence.leave', f => window.leaves.push(f))"
)


def assert_resumed_unseen(pages, ids: dict, above: dict) -> None:
    """Each page is back under its old peer id, still decoding beyond ``above``, with
    both people and tiles shown, and nobody saw a leave (needs WATCH_LEAVES first)."""
    for page in pages:
        assert self_id(page) == ids[page], "resumed under the same peer id"
        wait_decoding(page, 1, above=above[page])
        expect(page.locator("#online li")).to_have_count(2)
        expect(page.locator("#video-grid .tile")).to_have_count(2)
        assert page.evaluate("window.leaves") == []


def self_id(page) -> str:
    return page.evaluate("window.huddleCall.state.selfId")
