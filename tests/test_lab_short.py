"""The network lab on its short profiles, in real Chromium through real coturn and the
lab's relays: the impairment reaches the media, a cap makes the sender step down,
and after an outage media decodes again without a reload, under the same peer ids.
Behaviour, not the issue's wall-clock targets (those are in bench/RESULTS.md)."""

import statistics

import pytest

from netlab.lab import LabStack, RunRecord, play
from netlab.media import camera_args
from netlab.profiles import get
from tests.call_helpers import login_cookie
from tests.fixtures.live import CHROMIUM_ARGS, django_env, run_dir

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def chromium_args():
    # A busy camera clip (~1 Mbit/s): Chromium's own fake camera sends ~200 kbit/s,
    # which a 300 kbit/s cap would not even touch.
    return [*CHROMIUM_ARGS, *camera_args("clip")]


@pytest.fixture
def lab(transactional_db, room, owner, member):
    stack = LabStack(run_dir() / "lab", django_env(), seats=2).start()
    cookies = {"peer0": login_cookie(owner), "peer1": login_cookie(member.user)}
    yield stack, cookies
    stack.stop()


def run(lab, chromium, profile: str) -> RunRecord:
    stack, cookies = lab
    return play(
        stack, chromium, profile=get(profile), mode="reactive", cookies=cookies, slug="standup"
    )


def in_phase(record: RunRecord, label: str, rows, *, skip_s: float = 2.0):
    """Rows (samples or ticks) taken within the phase, after its first ``skip_s``."""
    phase = next(p for p in record.phases if p["label"] == label)
    lo, hi = phase["start_ms"] + skip_s * 1000, phase["end_ms"]
    return [r for r in rows if lo <= r.get("at", r.get("t")) <= hi]


def phase_delta(record: RunRecord, label: str, seat: str, direction: str) -> dict:
    i = next(i for i, p in enumerate(record.phases) if p["label"] == label)
    after = record.phases[i]["relay_counters"][seat][direction]
    before = record.phases[i - 1]["relay_counters"][seat][direction]
    return {k: after[k] - before[k] for k in after}


def steps(record: RunRecord, peer: str) -> list[dict]:
    """The send ladder's steps logged by ``peer``'s page ({t, peer, event})."""
    return [e for e in record.events if e["from_peer"] == peer and e["event"].startswith("step:")]


def cap_start(record: RunRecord, label: str) -> int:
    return next(p["start_ms"] for p in record.phases if p["label"] == label)


def test_loss_and_delay_on_the_relay_reach_the_media(lab, chromium):
    record = run(lab, chromium, "loss5-rtt150-short")
    impaired, clean = (p["peer"] for p in record.peers)
    label = "5 % loss, 150 ms"
    # The relay dropped ~5 % of what peer 0 sent and of what it was sent.
    for direction in ("up", "down"):
        d = phase_delta(record, label, "peer0", direction)
        assert d["packets_in"] > 300, d
        assert d["dropped_loss"] / d["packets_in"] == pytest.approx(0.05, abs=0.025), d
    # ...and the browsers saw it: peer 0's receiver reports of what it sends
    # (remote-inbound-rtp packetsLost), the loss of what peer 1 receives from it,
    # and a round trip of ~150 ms, where the clean lead-in had a few ms.
    sent = in_phase(record, label, [s for s in record.samples if s["from_peer"] == impaired])
    got = in_phase(record, label, [s for s in record.samples if s["from_peer"] == clean])
    assert len(sent) >= 4 and len(got) >= 4, record.samples
    # loss_out: packets reported lost between the peer's receiver reports over packets
    # sent between them (docs/protocol.md). Until 2026-12-08 it was lost over sent within
    # the 2 s interval, and under load some samples read 0.20-0.50 at 5 % (an audio
    # report, one every ~5 s, landing in an interval: 3 runs of 10). Now every sample
    # reads about 5 % (a span reaching back into the clean lead-in reads less).
    values = sorted(s["loss_out"] or 0 for s in sent)
    detail = [(s["loss_out"], s["level"], s["send_kbps"]) for s in sent]
    print("loss_out in the loss phase:", detail)
    assert 0.02 <= statistics.median(values) <= 0.1, detail
    assert values[-1] <= 0.15, detail
    assert statistics.mean(s["loss_in"] or 0 for s in got) > 0.01, [s["loss_in"] for s in got]
    rtts = [s["rtt"] for s in sent + got if s["rtt"] is not None]
    assert 120 <= statistics.median(rtts) <= 300, rtts
    lead = [s["rtt"] for s in in_phase(record, "clean", record.samples) if s["rtt"] is not None]
    assert max(lead) < 60, lead


def test_a_cap_makes_the_impaired_sender_step_down(lab, chromium):
    record = run(lab, chromium, "cap300-short")
    impaired = record.peers[0]["peer"]
    mine = [s for s in record.samples if s["from_peer"] == impaired]
    before = in_phase(record, "clean", mine)
    capped = in_phase(record, "300 kbit/s up", mine, skip_s=6.0)
    assert statistics.mean(s["send_kbps"] for s in before) > 600, before
    # What the browser itself sends (before the relay) fell under the cap: the sender
    # adapted, rather than the relay dropping most of it.
    assert statistics.mean(s["send_kbps"] for s in capped) < 400, capped
    assert any(
        s["qlr"] == "bandwidth" or (s["out_height"] or 999) < before[-1]["out_height"]
        for s in capped
    ), capped
    dropped = phase_delta(record, "300 kbit/s up", "peer0", "up")
    assert dropped["dropped_queue"] > 0, dropped  # the cap was real
    # The send ladder (docs/adaptation.md) stepped what peer 0 sends down from full,
    # and peer 1's tile of peer 0 says so instead of showing a frozen picture.
    assert record.mode_applied
    label = "300 kbit/s up"
    levels = [
        t["level"] for t in in_phase(record, label, record.ticks) if t["from_peer"] == impaired
    ]
    assert set(levels) - {"full", None}, levels
    notices = {
        t["notice"]
        for t in in_phase(record, label, record.ticks)
        if t["from_peer"] != impaired and t.get("notice")
    }
    assert any(n == "lower quality" or "audio only (poor connection)" in n for n in notices), (
        notices
    )
    # It stepped on the bandwidth it saw (Chrome's estimate falling under what it sent),
    # not only later on the loss the cap caused; and to a level that fits under the cap
    # with audio: video never went off.
    first = next(e for e in steps(record, impaired) if e["t"] >= cap_start(record, label))
    assert first["event"].endswith(":bandwidth"), steps(record, impaired)
    assert "audio" not in levels, levels


def test_after_an_outage_media_decodes_again_under_the_same_peer_ids(lab, chromium):
    record = run(lab, chromium, "tunnel-short")
    ids = {p["peer"] for p in record.peers}
    outage = next(p for p in record.phases if p["label"] == "outage")
    during = in_phase(record, "outage", record.ticks, skip_s=3.0)
    after = [t for t in record.ticks if t["t"] >= outage["end_ms"]]
    for me in ids:
        (other,) = ids - {me}
        seen = [t for t in during if t["from_peer"] == me and t["peer"] == other]
        assert seen and seen[-1]["frames"] == seen[0]["frames"], "the outage stopped the video"
        back = [t for t in after if t["from_peer"] == me and t["peer"] == other]
        assert back[-1]["frames"] > back[0]["frames"] + 30, "video decodes again"
        # Nobody rejoined: the same two ids, each still connected with the other.
        assert record.ids_after[me] == [other], record.ids_after
