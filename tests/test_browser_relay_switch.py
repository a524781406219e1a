"""Recovery moves a pair to the TURN relay when its path keeps failing, in a real call:
two Chromium peers with a real coturn in their ICE configuration (policy "all", so ICE
picks the direct host pair), and real packet loss from nftables rules on the two
browsers' own UDP sockets (nothing else on the machine is touched).

The path flaps like a Wi-Fi that roams: all of the browsers' UDP (direct and TURN)
stops while the link runs, and comes back for each ICE restart, which then finds the
direct pair again and loses it before it holds 10 s. After RELAY_AFTER (2) such
restarts the next break makes the client choose `relay` (docs/adaptation.md,
"Recovery") and log it with its reason; from then on only the direct path stays dead
(UDP between the two browsers' sockets), and media decodes again over a relay pair.

Between flaps the path is open only until the restart has ICE connected on the direct
pair again (0.2-0.3 s): a frame or two decode then, no more. ICE goes on calling the
blocked pair connected for ~7.5 s after (Chromium's consent timeouts), with no packet
passing either way, audio included. `pytest -s` prints each flap's open time and frames,
the send levels at the relay choice (a blackout once stepped them to audio only:
docs/adaptation.md, "While a link is down"), and how soon each page decodes again after it.

Why not only the direct path from the start: tried first, Chromium then moves the
selected pair to the TURN candidates by itself within the ICE agent (the link stayed
"connected", on a relay/host pair), so no recovery is needed or chosen. The `relay`
choice is for a link that is lost altogether, more than once, in a short time.

Needs root and nft (nftables); the rules live in their own table, removed afterwards."""

import os
import shutil
import signal
import subprocess
import time
from datetime import timedelta
from itertools import pairwise

import pytest

from rooms import telemetry
from tests.call_helpers import coturn_service, frames, self_id, two_in_call, wait_decoding
from tests.fixtures.live import daphne_service, run_dir
from tests.fixtures.workers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.fault]

SECRET = "relay-switch-secret-5d2a"
TABLE = f"huddle_direct_block_{os.getpid()}"

# Per page: each link's ICE state, the selected pair's candidate types, the ports of
# the page's own UDP host candidates, and whether the link went relay-only.
LINKS = """async () => {
  const out = [];
  for (const peer of window.huddleCall.state.peers.values()) {
    const r = await peer.pc.getStats();
    let pair = null;
    const hostPorts = [];
    r.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) {
        pair = r.get(s.selectedCandidatePairId);
      }
      if (s.type === "local-candidate" && s.candidateType === "host" && s.protocol === "udp") {
        hostPorts.push(s.port);
      }
      // A relay candidate's related port is the browser's socket that talks to coturn.
      if (s.type === "local-candidate" && s.candidateType === "relay" && s.relatedPort) {
        hostPorts.push(s.relatedPort);
      }
    });
    out.push({
      ice: peer.pc.iceConnectionState,
      local: pair ? r.get(pair.localCandidateId)?.candidateType ?? null : null,
      remote: pair ? r.get(pair.remoteCandidateId)?.candidateType ?? null : null,
      ports: pair ? [r.get(pair.localCandidateId)?.port, r.get(pair.remoteCandidateId)?.port]
        : null,
      protocol: pair ? r.get(pair.localCandidateId)?.protocol ?? null : null,
      hostPorts,
      relayOnly: peer.relayOnly,
      policy: peer.pc.getConfiguration().iceTransportPolicy,
      restarts: peer.restarts,
    });
  }
  return out;
}"""
RECOVERIES = "window.huddleCall.events().filter(e => e.event.startsWith('recover:'))"
TRACE = "window.huddleCall.trace.slice(-60)"


def nft(script: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, capture_output=True)


class PathBlock:
    """Two sets of UDP ports (our browsers' sockets, the ones their host candidates
    and TURN allocations use): `outage` drops every UDP packet from or to them, TURN
    included; `direct` only what one browser sends another (to coturn's port, never
    in a set, passes).

    The drop is on the output hook: the sender's own sendto() fails with EPERM, which
    no network does (a dead path loses packets downstream). The input hook, tried on
    2026-12-08, passed 2 runs and then once chose no relay in 120 s (cause not found):
    the output hook is the one with a long record of passes."""

    def __init__(self) -> None:
        nft(
            f"table inet {TABLE} {{\n"
            "  set outage { type inet_service; }\n"
            "  set direct { type inet_service; }\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            "    udp sport @outage counter drop\n"
            "    udp dport @outage counter drop\n"
            "    udp sport @direct udp dport @direct counter drop\n"
            "  }\n"
            "}\n"
        )
        self.on = False

    def block(self, which: str, ports) -> None:
        elements = ", ".join(str(p) for p in sorted(set(ports)))
        if elements:
            nft(f"add element inet {TABLE} {which} {{ {elements} }}\n")
        self.on = True

    def unblock(self, which: str) -> None:
        nft(f"flush set inet {TABLE} {which}\n")
        self.on = False

    def dropped(self) -> list[int]:
        """Packets dropped by each rule (outage from, outage to, direct)."""
        out = subprocess.run(
            ["nft", "list", "chain", "inet", TABLE, "out"], text=True, capture_output=True
        ).stdout.split()
        return [int(out[i + 1]) for i, word in enumerate(out) if word == "packets"]

    def elements(self, which: str) -> str:
        """The ports in a set, as nft lists them (for failure messages)."""
        out = subprocess.run(
            ["nft", "list", "set", "inet", TABLE, which], text=True, capture_output=True
        ).stdout
        _, _, elements = out.partition("elements = ")
        return " ".join(elements.split("}")[0].split()) + "}" if elements else "{}"

    def remove(self) -> None:
        subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)


@pytest.fixture
def path_block():
    # A missing part fails, it does not skip (bin/bootstrap --test installs nftables).
    if shutil.which("nft") is None:
        pytest.fail("nft (nftables) is missing: run bin/bootstrap --test")
    if os.geteuid() != 0:
        pytest.fail("the relay-switch test drops UDP with nftables rules: run it as root")
    block = PathBlock()
    yield block
    block.remove()


@pytest.fixture
def turn():
    service = coturn_service(run_dir(), SECRET).start()
    yield service
    service.stop()


@pytest.fixture
def web(turn, transactional_db):
    """daphne with TURN in the configuration, but not relay-only: ICE prefers the direct pair."""
    service = daphne_service(
        TURN_URLS=f"turn:127.0.0.1:{turn.port}?transport=udp", TURN_SECRET=SECRET, TURN_TTL="600"
    ).start()
    yield service
    service.stop()


def host_ports(links) -> list[int]:
    return [port for page in links.values() for link in page for port in link["hostPorts"]]


def through_turn(link, turn) -> bool:
    """The selected pair goes through coturn: a relay candidate at our end or theirs, or
    their address is one of coturn's relay ports (the side that reaches the other's relay
    from its own socket may know that address only as a peer-reflexive candidate)."""
    flags = dict(a.split("=", 1) for a in turn.argv if a.startswith(("--min-port=", "--max-port=")))
    relay_ports = range(int(flags["--min-port"]), int(flags["--max-port"]) + 1)
    remote_port = (link["ports"] or [None, None])[1]
    return "relay" in (link["local"], link["remote"]) or remote_port in relay_ports


def wait_through_turn(pages, turn, block: PathBlock, shut_direct) -> list[dict]:
    """Until each page's link is connected on a pair through TURN (the direct path kept
    dead meanwhile); returns the links."""
    seen: list[dict] = []

    def on_relay() -> bool:
        shut_direct()
        seen[:] = [p.evaluate(LINKS)[0] for p in pages]
        return all(
            through_turn(link, turn) and link["ice"] in ("connected", "completed") for link in seen
        )

    try:
        wait_until(on_relay, timeout=20, what="a pair through TURN on both sides")
    except TimeoutError as err:
        traces = [p.evaluate(TRACE) for p in pages]
        raise AssertionError((seen, block.dropped(), block.elements("direct"), traces)) from err
    return seen


def open_windows(log) -> list:
    """Per flap: how long the path was open ("back" to the next "outage") and the frames
    each page decoded meanwhile."""
    out = []
    for back, outage in pairwise(log):
        if back[1] == "back" and outage[1] == "outage":
            decoded = [
                sum(now.values()) - sum(then.values())
                for then, now in zip(back[3], outage[4], strict=True)
            ]
            out.append((round(outage[0] - back[0], 1), decoded))
    return out


def direct(links, turn) -> bool:
    """Connected on a host pair: both ends the browsers' own sockets. The remote end may
    be peer-reflexive (its checks came before its candidate did: seen under load)."""
    return bool(links) and all(
        link["ice"] in ("connected", "completed")
        and link["local"] == "host"
        and link["remote"] in ("host", "prflx")
        and not through_turn(link, turn)
        for link in links
    )


def test_a_direct_path_that_keeps_failing_moves_the_pair_to_the_turn_relay(
    turn, web, path_block, new_context, room, owner, member
):
    since = telemetry.now() - timedelta(seconds=1)
    block = path_block
    base = f"http://127.0.0.1:{web.port}"
    alice, bob = two_in_call(new_context, base, owner, member.user, timeout=30)
    pages = (alice, bob)
    # The direct pair first (ICE may select a pair to the other's relay a moment before
    # the host pair: seen right after the call came up, under load).
    links = {}

    def on_direct() -> bool:
        links.update({p: p.evaluate(LINKS) for p in pages})
        return all(direct(v, turn) for v in links.values())

    try:
        wait_until(on_direct, timeout=10, what="the direct pair on both sides")
    except TimeoutError as err:
        raise AssertionError(links) from err

    # Flap the path: lose all of it while the link runs on the direct pair; let it
    # through again once a client restarts ICE (so the restart finds the direct pair
    # and takes it again).
    log = []
    restarts_at_block = 0
    deadline = time.monotonic() + 120
    while True:
        events = {p: [e["event"] for e in p.evaluate(RECOVERIES)] for p in pages}
        if any(e.startswith("recover:relay:") for e in sum(events.values(), [])):
            break
        links = {p: p.evaluate(LINKS) for p in pages}
        restarts = sum(e.startswith("recover:ice-restart:") for e in sum(events.values(), []))
        # On the direct pair, not only connected: with TURN in the configuration ICE can
        # select a pair to the other's relay first and move to the host pair a moment
        # later (an outage begun in between caught a host-relay pair, under load).
        on_direct = all(direct(v, turn) for v in links.values())
        if not block.on and on_direct:
            block.block("outage", host_ports(links))
            restarts_at_block = restarts
            # With the frames each page had decoded: whether video came back between flaps.
            # The path was open since the last "back" only until ICE was connected on the
            # direct pair again (a fraction of a second; ICE then calls the blocked pair
            # connected for ~7.5 s more, no packet passing): a frame or two at most.
            decoded = [frames(p) for p in pages]
            log.append(
                (round(time.monotonic(), 1), "outage", restarts, list(links.values()), decoded)
            )
        elif block.on and restarts > restarts_at_block:
            block.unblock("outage")
            log.append((round(time.monotonic(), 1), "back", restarts, [frames(p) for p in pages]))
        if time.monotonic() > deadline:
            # In full (an assert's message is cut short): which flaps, restarts and pairs.
            traces = [p.evaluate(TRACE) for p in pages]
            raise AssertionError(
                f"no relay choice in 120 s\nflaps: {log}\nevents: {list(events.values())}\n"
                f"links: {list(links.values())}\ndropped: {block.dropped()}\ntraces: {traces}"
            )
        alice.wait_for_timeout(200)

    # From here TURN works again, and only the direct path stays dead, for sockets
    # opened after this moment too: the side whose policy stays "all" gathers new host
    # candidates at each ICE restart, and Chromium pairs them with the chooser's host
    # socket of the generation before the relay choice (seen under load: a host pair
    # 60138 <-> 40474 kept the call direct, 40474 opened after a one-time block).
    def shut_direct() -> None:
        block.block("direct", host_ports({p: p.evaluate(LINKS) for p in pages}))

    print("frames decoded at each outage:", [e[4] for e in log if e[1] == "outage"])
    print("each flap (s the path was open, frames decoded meanwhile):", open_windows(log))
    levels = [p.evaluate("window.huddleCall.sendLevels()") for p in pages]
    print("send levels at the relay choice:", levels)
    # The blackouts are no congestion: neither sender paused its video for them. Before
    # the ladder held still on a silent link and waited out a warm-up after it, 4 of 8
    # runs reached audio only here, and video then waited for a step up once back.
    assert all("audio" not in page.values() for page in levels), (levels, log)
    block.unblock("outage")
    chosen_at = time.monotonic()
    shut_direct()
    chooser = next(p for p in pages if any(e.startswith("recover:relay:") for e in events[p]))
    mine = events[chooser]
    relay_at = next(i for i, e in enumerate(mine) if e.startswith("recover:relay:"))
    # ICE restarts that did not hold, then the relay, with that reason.
    assert mine[relay_at].startswith("recover:relay:direct-failed-"), (mine, log)
    assert sum(e.startswith("recover:ice-restart:") for e in mine[:relay_at]) >= 2, (mine, log)
    # The restarts had found the direct pair again each time.
    assert sum(1 for entry in log if entry[1] == "outage") >= 3, log
    outages = [entry[3] for entry in log if entry[1] == "outage"]
    assert all(direct(v, turn) for links_then in outages for v in links_then), log

    # Media decodes again over a relay pair, on the same connection, direct still dead.
    back_after = []
    for page in pages:
        try:
            wait_decoding(page, 1, above=frames(page), timeout=45, others=pages, each=shut_direct)
        except AssertionError as err:
            raise AssertionError(
                f"{err}\nflaps (time, what, restarts, links, frames): {log}"
            ) from err
        back_after.append(round(time.monotonic() - chosen_at, 1))
    print("video decoding again on each page, s after the relay choice:", back_after)

    wait_through_turn(pages, turn, block, shut_direct)
    (link,) = chooser.evaluate(LINKS)
    assert link["relayOnly"] and link["policy"] == "relay", link
    wait_decoding(chooser, 1, above=frames(chooser), timeout=10, each=shut_direct)
    assert block.on and block.dropped()[0] > 0, block.dropped()
    # Still the same two peers, no rejoin.
    a, b = self_id(alice), self_id(bob)
    assert set(frames(alice)) == {b} and set(frames(bob)) == {a}

    # The choice and its reason in the telemetry the server stored (MongoDB).
    who = self_id(chooser)

    def logged():
        docs = telemetry.samples_for(room=room.slug, since=since)
        return any(d["from_peer"] == who and mine[relay_at] in d["events"] for d in docs)

    wait_until(logged, timeout=20, what="the relay choice in the chooser's samples")


PEERS = "[...window.huddleCall.state.peers.values()]"


def test_both_sides_choosing_the_relay_at_once_recover_over_it(
    turn, web, path_block, new_context, room, owner, member
):
    """The glare CI met: both clients choose `relay` at the same moment, each makes a
    relay-only restart offer, the polite side rolls its own back and answers the other's.
    Both connections end relay-only and, with the direct path dead, decode again.

    The flapping that leads there is the first test's; here both links start with
    RELAY_AFTER restarts behind them, and both choose while the whole path is down."""
    block = path_block
    base = f"http://127.0.0.1:{web.port}"
    alice, bob = two_in_call(new_context, base, owner, member.user, timeout=30)
    pages = (alice, bob)
    for page in pages:
        page.evaluate(f"{PEERS}.forEach(peer => {{ peer.restarts = 2; }})")
    block.block("outage", host_ports({p: p.evaluate(LINKS) for p in pages}))

    def disconnected():
        return all(link["ice"] == "disconnected" for p in pages for link in p.evaluate(LINKS))

    wait_until(disconnected, timeout=20, what="both links disconnected")
    # Both choose now (their own 3 s timers would choose about a second apart), and
    # neither hears of the other's offer before its own is made: the server is stopped
    # until both are (at most 1.5 s, inside the sockets' 2.5 s heartbeat deadline).
    choose = f"{PEERS}.forEach(p => {{ clearTimeout(p.disconnectTimer); p.recover(); }})"
    offering = f"{PEERS}.every(p => p.pc.signalingState === 'have-local-offer')"
    os.kill(web.proc.pid, signal.SIGSTOP)
    try:
        for page in pages:
            page.evaluate(choose)
        stop = time.monotonic() + 1.5
        while not all(page.evaluate(offering) for page in pages):
            assert time.monotonic() < stop, [p.evaluate(TRACE) for p in pages]
            alice.wait_for_timeout(20)
    finally:
        os.kill(web.proc.pid, signal.SIGCONT)

    def shut_direct() -> None:
        block.block("direct", host_ports({p: p.evaluate(LINKS) for p in pages}))

    block.unblock("outage")
    shut_direct()
    for page in pages:
        events = [e["event"] for e in page.evaluate(RECOVERIES)]
        assert events[:1] == ["recover:relay:direct-failed-2"], events
    collisions = sum(p.evaluate(f"{PEERS}[0].negotiator.collisions") for p in pages)
    assert collisions >= 1, [p.evaluate(TRACE) for p in pages]  # it was a glare

    for page in pages:
        wait_decoding(page, 1, above=frames(page), timeout=45, others=pages, each=shut_direct)
    links = wait_through_turn(pages, turn, block, shut_direct)
    assert all(link["relayOnly"] and link["policy"] == "relay" for link in links), links
