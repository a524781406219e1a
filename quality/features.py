"""Features of one link's recent telemetry samples (docs/protocol.md ``call.stats``).

The browser computes the same numbers in ``static/js/predict.js``: every formula
here is written so the two agree to the last bits that matter (same order of
operations, same clipping), and ``tests/js/predict.test.mjs`` checks it on vectors
this module exports (``tests/test_quality_features.py`` keeps them current).

A window is the last ``WINDOW`` samples of one link (one sender, one remote peer),
oldest first, none older than ``MAX_AGE_MS`` before the newest. Absent numbers
(``null``) are carried forward from an earlier sample of the window, else a
neutral default, so a stats call that failed once does not look like trouble.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

WINDOW = 5  # samples: 10 s at the client's one sample per 2 s
MAX_AGE_MS = 12_000
LEVELS = ("full", "reduced", "low", "audio")

FEATURES: tuple[str, ...] = (
    "rtt",  # s, newest
    "rtt_slope",  # s per s over the window
    "loss_out",  # fraction of what I send that the peer lost, newest
    "loss_out_mean",
    "loss_out_slope",  # per s
    "loss_in",  # fraction of what I receive that was lost, newest
    "loss_in_slope",
    "headroom",  # available outgoing bitrate / what I send, 0..4
    "bw_out_slope",  # relative change of the available outgoing bitrate per s
    "send_drop",  # 1 - newest send bitrate / the window's highest
    "jitter",  # s, newest
    "jitter_slope",
    "fps_drop",  # 1 - newest inbound frame rate / the window's highest
    "conceal",  # inbound audio concealment, newest
    "freeze_in",  # inbound freeze time over the window, s / 10 s
    "qlr_bandwidth",  # outbound video limited by bandwidth (newest)
    "qlr_cpu",
    "level",  # what I send now: 0 full .. 1 audio
)

Sample = Mapping[str, Any]


def clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def window_of(samples: Sequence[Sample]) -> list[Sample]:
    """The newest ``WINDOW`` samples of one link, none older than ``MAX_AGE_MS``
    before the newest (a gap in the samples starts a new window)."""
    recent = list(samples[-WINDOW:])
    if not recent:
        return recent
    newest = recent[-1]["t"]
    return [s for s in recent if newest - s["t"] <= MAX_AGE_MS]


def _num(s: Sample, key: str) -> float | None:
    v = s.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _filled(window: Sequence[Sample], key: str, default: float | None) -> list[float | None]:
    """The key's values, each absent one replaced by the last present one before
    it in the window, else ``default``."""
    out: list[float | None] = []
    last = default
    for s in window:
        v = _num(s, key)
        if v is not None:
            last = v
        out.append(last)
    return out


def _slope(window: Sequence[Sample], values: Sequence[float | None]) -> float:
    """Least-squares slope of the values against time in seconds; 0 with fewer
    than two values or no spread in time."""
    ts: list[float] = []
    vs: list[float] = []
    for s, v in zip(window, values, strict=True):
        if v is not None:
            ts.append(s["t"] / 1000)
            vs.append(v)
    n = len(ts)
    if n < 2:
        return 0.0
    tm = 0.0
    vm = 0.0
    for i in range(n):
        tm += ts[i]
        vm += vs[i]
    tm /= n
    vm /= n
    num = 0.0
    den = 0.0
    for i in range(n):
        num += (ts[i] - tm) * (vs[i] - vm)
        den += (ts[i] - tm) * (ts[i] - tm)
    if den <= 0:
        return 0.0
    return num / den


def _last(values: Sequence[float | None], default: float) -> float:
    v = values[-1] if values else None
    return default if v is None else v


def features(window: Sequence[Sample]) -> list[float]:
    """The feature vector (``FEATURES`` order) of one window, oldest sample first.
    An empty window gives the neutral vector."""
    rtt = _filled(window, "rtt", None)
    loss_out = _filled(window, "loss_out", None)
    loss_in = _filled(window, "loss_in", None)
    bw = _filled(window, "bw_out", None)
    send = _filled(window, "send_kbps", None)
    jitter = _filled(window, "jitter", None)
    fps = _filled(window, "fps_in", None)
    conceal = _filled(window, "conceal", None)

    lo_sum = 0.0
    lo_n = 0
    for v in loss_out:
        if v is not None:
            lo_sum += v
            lo_n += 1
    bw_sum = 0.0
    bw_n = 0
    for v in bw:
        if v is not None:
            bw_sum += v
            bw_n += 1
    send_max = 0.0
    for v in send:
        if v is not None and v > send_max:
            send_max = v
    fps_max = 0.0
    for v in fps:
        if v is not None and v > fps_max:
            fps_max = v
    freeze_ms = 0.0
    for s in window:
        f = _num(s, "freeze_ms")
        if f is not None and f > 0:
            freeze_ms += f

    bw_last = bw[-1] if bw else None
    send_last = _last(send, 0.0)
    headroom = 4.0 if bw_last is None else clip(bw_last / max(send_last, 30.0), 0.0, 4.0)
    bw_slope = 0.0
    if bw_n > 0:
        bw_slope = clip(_slope(window, bw) / max(bw_sum / bw_n, 30.0), -1.0, 1.0)
    fps_last = fps[-1] if fps else None
    fps_drop = 0.0
    if fps_last is not None and fps_max > 0:
        fps_drop = clip(1.0 - fps_last / fps_max, 0.0, 1.0)
    newest = window[-1] if window else {}
    qlr = newest.get("qlr")
    level = newest.get("level")
    level_x = LEVELS.index(level) / 3 if level in LEVELS else 0.0

    return [
        _last(rtt, 0.0) / 1000,
        clip(_slope(window, rtt) / 1000, -1.0, 1.0),
        _last(loss_out, 0.0),
        lo_sum / lo_n if lo_n else 0.0,
        clip(_slope(window, loss_out), -0.5, 0.5),
        _last(loss_in, 0.0),
        clip(_slope(window, loss_in), -0.5, 0.5),
        headroom,
        bw_slope,
        clip(1.0 - send_last / send_max, 0.0, 1.0) if send_max > 30 else 0.0,
        _last(jitter, 0.0) / 1000,
        clip(_slope(window, jitter) / 1000, -1.0, 1.0),
        fps_drop,
        _last(conceal, 0.0),
        clip(freeze_ms / 10_000, 0.0, 1.0),
        1.0 if qlr == "bandwidth" else 0.0,
        1.0 if qlr == "cpu" else 0.0,
        level_x,
    ]


def probability(model: Mapping[str, Any], x: Sequence[float]) -> float:
    """The exported logistic model (``static/js/quality-model.json``) on one
    feature vector: the probability of a freeze within the model's horizon."""
    z = float(model["intercept"])
    for i in range(len(x)):
        z += model["coef"][i] * ((x[i] - model["mean"][i]) / model["scale"][i])
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
