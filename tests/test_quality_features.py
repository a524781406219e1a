"""The predictor's features and labels (quality/features.py, quality/labels.py) on
hand-written sample sequences, and the vectors that hold the browser's copy
(static/js/predict.js, tests/js/predict.test.mjs) to the same numbers."""

import json
import math
import os
from pathlib import Path

import pytest

from quality.features import FEATURES, MAX_AGE_MS, WINDOW, features, probability, window_of
from quality.labels import freeze_episodes
from tests.quality_sim import run_simulate

VECTORS = Path(__file__).parent / "js" / "quality-vectors.json"
F = {name: i for i, name in enumerate(FEATURES)}


def sample(t, **kw):
    base = {
        "peer": "p2", "t": t, "rtt": 50.0, "loss_in": 0.0, "loss_out": 0.0, "jitter": 5.0,
        "bw_out": 2000, "send_kbps": 1000, "recv_kbps": 1000, "qlr": "none", "fps_in": 30.0,
        "decoded": 60, "dropped": 0, "freezes": 0, "freeze_ms": 0, "conceal": 0.0,
        "level": "full", "pred": None,
    }  # fmt: skip
    base.update(kw)
    return base


def test_a_calm_link_has_flat_trends_and_headroom():
    w = [sample(i * 2000) for i in range(5)]
    x = features(w)
    assert len(x) == len(FEATURES)
    assert x[F["rtt"]] == pytest.approx(0.05)
    assert x[F["rtt_slope"]] == 0 and x[F["loss_out_slope"]] == 0
    assert x[F["headroom"]] == 2.0
    assert x[F["fps_drop"]] == 0 and x[F["send_drop"]] == 0 and x[F["level"]] == 0


def test_rising_rtt_and_loss_have_the_slope_per_second():
    w = [sample(i * 2000, rtt=50.0 + 100 * i, loss_out=0.02 * i) for i in range(5)]
    x = features(w)
    assert x[F["rtt_slope"]] == pytest.approx(0.05)  # 100 ms per 2 s
    assert x[F["loss_out_slope"]] == pytest.approx(0.01)
    assert x[F["loss_out"]] == pytest.approx(0.08)
    assert x[F["loss_out_mean"]] == pytest.approx(0.04)


def test_absent_numbers_are_carried_forward_not_read_as_trouble():
    w = [sample(0, rtt=80.0), sample(2000, rtt=None, bw_out=None), sample(4000, rtt=None)]
    x = features(w)
    assert x[F["rtt"]] == pytest.approx(0.08) and x[F["rtt_slope"]] == 0
    assert x[F["headroom"]] == 2.0  # bw_out 2000 carried over the gap
    nothing = features([{"peer": "p", "t": 0}])
    assert nothing[F["headroom"]] == 4.0 and nothing[F["rtt"]] == 0
    strange = features([sample(0, rtt="12", loss_out=True, fps_in=float("nan"))])
    assert strange[F["rtt"]] == 0 and strange[F["loss_out"]] == 0 and strange[F["fps_drop"]] == 0


def test_falling_bitrate_and_frame_rate_and_the_level():
    w = [sample(0, bw_out=2000, send_kbps=1200), sample(2000, bw_out=600, send_kbps=900,
         fps_in=10.0, qlr="bandwidth", level="reduced")]  # fmt: skip
    x = features(w)
    assert x[F["headroom"]] == pytest.approx(600 / 900)
    assert x[F["bw_out_slope"]] == pytest.approx(-700 / 1300)
    assert x[F["send_drop"]] == pytest.approx(0.25)
    assert x[F["fps_drop"]] == pytest.approx(2 / 3)
    assert x[F["qlr_bandwidth"]] == 1 and x[F["level"]] == pytest.approx(1 / 3)


def test_the_window_is_the_last_samples_and_a_gap_starts_it_again():
    seq = [sample(i * 2000) for i in range(9)]
    assert window_of(seq) == seq[-WINDOW:]
    gap = [sample(0), sample(2000), sample(2000 + MAX_AGE_MS + 1)]
    assert window_of(gap) == gap[-1:]


def test_probability_is_the_logistic_of_the_standardised_features():
    n = len(FEATURES)
    model = {"mean": [0.0] * n, "scale": [2.0] * n, "coef": [1.0] + [0.0] * (n - 1),
             "intercept": -1.0}  # fmt: skip
    x = [4.0] + [9.0] * (n - 1)
    assert probability(model, x) == pytest.approx(1 / (1 + math.exp(-1.0)))
    model["intercept"] = -800.0  # no overflow far out
    assert probability(model, x) == pytest.approx(0.0)


def test_a_freeze_reported_at_its_end_starts_an_episode_before_it():
    sent = [sample(i * 2000) for i in range(12)]
    received = [sample(i * 2000 + 5) for i in range(12)]
    for i in (5, 6):
        received[i]["fps_in"] = 0.0
    received[7]["freeze_ms"] = 4300
    eps = freeze_episodes(sent=sent, received=received)
    assert len(eps) == 1
    e = eps[0]
    assert e.onset == received[6]["t"] - 4300  # earliest: from the freeze time reported
    assert e.end == received[7]["t"] and e.freeze_ms == 4300


def test_no_video_sent_or_not_yet_started_is_no_freeze():
    sent = [sample(i * 2000, level="audio" if 4 <= i <= 8 else "full") for i in range(12)]
    received = [sample(i * 2000 + 5, fps_in=0.0 if 5 <= i <= 7 else 30.0) for i in range(12)]
    received[0]["fps_in"] = received[1]["fps_in"] = 0.0  # the call starting
    assert freeze_episodes(sent=sent, received=received) == []
    received[11]["freeze_ms"] = 120  # once video has been sent again for a while
    assert len(freeze_episodes(sent=sent, received=received)) == 1
    assert freeze_episodes(sent=sent, received=received, min_freeze_ms=200) == []


def _vectors() -> dict:
    """Windows from simulated links (quiet, ramping, frozen) and hand-made odd ones,
    a fixed model, and what Python computes for each."""
    n = len(FEATURES)
    model = {
        "version": 1, "kind": "logistic", "features": list(FEATURES), "window": WINDOW,
        "max_age_ms": MAX_AGE_MS, "horizon_ms": 6000, "threshold": 0.5,
        "mean": [round(0.1 * (i % 4), 3) for i in range(n)],
        "scale": [round(0.5 + 0.25 * (i % 3), 3) for i in range(n)],
        "coef": [round(((-1) ** i) * (0.3 + 0.1 * i), 3) for i in range(n)],
        "intercept": -0.7,
    }  # fmt: skip
    run = run_simulate("vectors", seed=7, minutes=1.5, spells=2, blips=2)
    windows = []
    for link in (("A", "B"), ("B", "A")):  # B's samples show A's video freezing
        sent = run.links[link]
        windows += [window_of(sent[: i + 1]) for i in range(0, len(sent), 2)]
    windows += [
        [],
        [{"peer": "p", "t": 1000}],
        [sample(0, rtt=None, bw_out=None), sample(2000, loss_out=None, qlr="cpu", level="low")],
        [sample(0), sample(2000 + MAX_AGE_MS, fps_in=None, decoded=0, level="audio")],
        [sample(0, rtt="12", loss_out=True, send_kbps=10, fps_in=0.0)],
    ]
    cases = []
    for w in windows:
        w = [{k: v for k, v in s.items() if v is not None or k in ("rtt", "bw_out")} for s in w]
        x = features(window_of(w))
        cases.append({"window": w, "features": x, "p": probability(model, x)})
    return {"model": model, "cases": cases}


def test_the_browser_vectors_match_what_python_computes():
    """tests/js/predict.test.mjs checks static/js/predict.js against this file;
    regenerate it with QUALITY_VECTORS_WRITE=1 after changing the features."""
    fresh = _vectors()
    if os.environ.get("QUALITY_VECTORS_WRITE") or not VECTORS.exists():
        VECTORS.write_text(json.dumps(fresh, indent=None, separators=(",", ":")) + "\n")
    stored = json.loads(VECTORS.read_text())
    assert stored["model"] == fresh["model"]
    assert len(stored["cases"]) == len(fresh["cases"])
    for k, name in enumerate(FEATURES):  # every feature is exercised
        assert any(c["features"][k] != 0 for c in fresh["cases"]), name
    for got, want in zip(stored["cases"], fresh["cases"], strict=True):
        assert got["window"] == want["window"]
        assert got["features"] == pytest.approx(want["features"], rel=1e-12, abs=1e-12)
        assert got["p"] == pytest.approx(want["p"], rel=1e-12, abs=1e-12)
