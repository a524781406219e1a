"""Simulated two-peer telemetry for the unit tests of quality/ (pure logic only:
the shipped model is trained on lab recordings, quality/recordings/).

Each trouble spell on the link A -> B ramps A's view of it up over a few samples
(loss A's video suffers, RTT, the available outgoing bitrate falling under what
A sends) before B's inbound video freezes; a "blip" is one bad sample that
recovers without a freeze (what a reactive rule trips on)."""

from __future__ import annotations

import random
from typing import Any

from quality.recordings import Run

STEP = 2000


def run_simulate(
    run_id: str,
    *,
    seed: int,
    minutes: float = 4,
    spells: int = 4,
    blips: int = 4,
    mode: str = "off",
    profile: str = "sim",
) -> Run:
    rng = random.Random(seed)
    n = int(minutes * 60_000 / STEP)
    t0 = 1_765_000_000_000 + seed * 10_000_000
    # Per sample index of A -> B: 0 calm, 1..3 ramp, 4 frozen.
    state = [0] * n
    for k in range(spells):
        start = 10 + k * (n - 12) // max(spells, 1) + rng.randint(0, 4)
        for j, s in enumerate((1, 2, 3, 4, 4)):
            if start + j < n:
                state[start + j] = max(state[start + j], s)
    calm = [
        i
        for i in range(8, n)
        if state[i] == 0 and all(state[i + d] == 0 for d in range(1, 6) if i + d < n)
    ]
    blip_at = set(rng.sample(calm, min(blips, len(calm))))

    sent_ab: list[dict[str, Any]] = []
    recv_ba: list[dict[str, Any]] = []
    sent_ba: list[dict[str, Any]] = []
    recv_ab: list[dict[str, Any]] = []
    for i in range(n):
        t = t0 + i * STEP + rng.randint(-30, 30)
        s = state[i]
        blip = i in blip_at
        loss = 0.005 + rng.random() * 0.01 + 0.05 * s + (0.12 if blip else 0.0)
        rtt = 40 + rng.random() * 10 + 90 * s + (700 if blip else 0)
        send = 1200 - (150 * s if s else 0) + rng.randint(-40, 40)
        bw = 1800 - 400 * s + rng.randint(-50, 50)
        sent_ab.append(
            {
                "t": t,
                "rtt": rtt,
                "loss_out": min(loss, 1),
                "loss_in": 0.01 * rng.random(),
                "jitter": 5 + 10 * s,
                "bw_out": bw,
                "send_kbps": send,
                "recv_kbps": 1100,
                "qlr": "bandwidth" if s >= 3 else "none",
                "fps_in": 29.0,
                "decoded": 58,
                "freezes": 0,
                "freeze_ms": 0,
                "conceal": 0.0,
                "level": "full",
            }
        )
        frozen = s == 4
        ended = i > 0 and state[i - 1] == 4 and not frozen
        recv_ba.append(
            {
                "t": t + 7,
                "rtt": rtt,
                "loss_out": 0.01,
                "loss_in": min(loss, 1),
                "jitter": 5,
                "bw_out": 1800,
                "send_kbps": 1100,
                "recv_kbps": 200 if frozen else send,
                "qlr": "none",
                "fps_in": 0.0 if frozen else 29.0,
                "decoded": 0 if frozen else 58,
                "freezes": 1 if ended else 0,
                "freeze_ms": 3900 if ended else 0,
                "conceal": 0.05 if frozen else 0.0,
                "level": "full",
            }
        )
        sent_ba.append(dict(recv_ba[-1]))
        recv_ab.append(dict(sent_ab[-1]))
    run = Run(id=run_id, profile=profile, mode=mode)
    run.links[("A", "B")] = sent_ab
    run.links[("B", "A")] = recv_ba
    return run
