"""Alarms against freezes: precision, recall, lead time and false alarms of a
predictor on recorded links, and the reactive ladder's own rules as a predictor
beside it (what the ladder would have stepped down on, sample by sample).

Definitions (docs/adaptation.md, "Prediction"):
- an alarm is a counted sample (quality/dataset.py ``use``) where the predictor fires;
  it is true when a freeze of that link starts within the horizon after it, else false;
- a freeze is caught when an alarm came within the horizon before its onset; its
  lead time is the onset minus the first such alarm;
- precision = true alarms / alarms; false-alarm share = 1 - precision; false alarms
  per minute of counted link time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from statistics import median
from typing import Any

from .dataset import HORIZON_MS, LinkSeries
from .features import probability

# The reactive ladder (static/js/call-quality.js SendLadder with LADDER_DEFAULTS and
# LEVEL_ENCODINGS), replayed on the recorded samples: an alarm where it would step
# down. Its level is replayed too (down on each alarm, up after UP_AFTER fine samples
# once HOLD_MS have passed since the last step down), so a lasting cap is one or two
# alarms as in the call, not one per sample.
LOSS_DOWN = 0.1  # on DOWN_AFTER samples in a row
LOSS_SEVERE = 0.3  # once
LOSS_GOOD = 0.03
RTT_DOWN_MS = 500.0  # on DOWN_AFTER samples in a row
RTT_GOOD_MS = 300.0
DOWN_AFTER = 2
UP_AFTER = 3
HOLD_MS = 8000
WARMUP_MS = 6000  # no bandwidth step while the estimate ramps up
NEED_KBPS = (600, 280, 140, 0)  # full, reduced, low, audio

Alarms = list[bool]


def _n(v: Any) -> float | None:
    return None if isinstance(v, bool) or not isinstance(v, int | float) else float(v)


def alarms_reactive(ls: LinkSeries) -> Alarms:
    out: Alarms = []
    index = lossy = slow = cpu = good = 0
    last_down = -1e18
    start = ls.samples[0]["t"] if ls.samples else 0
    for s in ls.samples:
        t = s["t"]
        loss, rtt, bw = _n(s.get("loss_out")), _n(s.get("rtt")), _n(s.get("bw_out"))
        qlr = s.get("qlr")
        lossy = lossy + 1 if loss is not None and loss >= LOSS_DOWN else 0
        slow = slow + 1 if rtt is not None and rtt >= RTT_DOWN_MS else 0
        cpu = cpu + 1 if qlr == "cpu" else 0
        down = index < 3 and (
            (loss is not None and (loss >= LOSS_SEVERE or lossy >= DOWN_AFTER))
            or slow >= DOWN_AFTER
            or (
                t - start >= WARMUP_MS
                and qlr in ("bandwidth", None)
                and bw is not None
                and bw < NEED_KBPS[index]
            )
            or (cpu >= DOWN_AFTER and index < 2)
        )
        out.append(down)
        if down:
            index += 1
            last_down = t
            lossy = slow = cpu = good = 0
            continue
        fine = (loss is None or loss < LOSS_GOOD) and (rtt is None or rtt < RTT_GOOD_MS)
        good = good + 1 if fine and qlr != "cpu" else 0
        if index > 0 and good >= UP_AFTER and t - last_down >= HOLD_MS:
            if bw is None or bw >= NEED_KBPS[index - 1]:
                index -= 1
                lossy = slow = cpu = good = 0
    return out


def alarms_model(
    ls: LinkSeries, model: Mapping[str, Any], threshold: float | None = None
) -> Alarms:
    th = model["threshold"] if threshold is None else threshold
    return [probability(model, x) >= th for x in ls.x]


def score(
    series: Sequence[LinkSeries], alarms: Sequence[Alarms], *, horizon_ms: float = HORIZON_MS
) -> dict[str, Any]:
    true_a = false_a = 0
    counted_ms = 0.0
    leads: list[float] = []
    freezes = 0
    for ls, al in zip(series, alarms, strict=True):
        ts = ls.t
        for i, t in enumerate(ts):
            if not ls.use[i]:
                continue
            if i + 1 < len(ts):
                counted_ms += min(ts[i + 1] - t, 6_000)
            if al[i]:
                if ls.y[i]:
                    true_a += 1
                else:
                    false_a += 1
        for e in ls.episodes:
            freezes += 1
            lo = e.onset - horizon_ms
            before = [t for i, t in enumerate(ts) if al[i] and ls.use[i] and lo <= t < e.onset]
            if before:
                leads.append(e.onset - before[0])
    n_alarms = true_a + false_a
    minutes = counted_ms / 60_000
    return {
        "freezes": freezes,
        "caught": len(leads),
        "caught_2s": sum(1 for d in leads if d >= 2_000),
        "recall": round(len(leads) / freezes, 3) if freezes else None,
        "recall_2s": round(sum(1 for d in leads if d >= 2_000) / freezes, 3) if freezes else None,
        "alarms": n_alarms,
        "precision": round(true_a / n_alarms, 3) if n_alarms else None,
        "false_alarm_share": round(false_a / n_alarms, 3) if n_alarms else None,
        "false_alarms_per_min": round(false_a / minutes, 2) if minutes else None,
        "lead_s": _dist([d / 1000 for d in leads]),
        "counted_minutes": round(minutes, 1),
    }


def _dist(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"min": None, "median": None, "max": None}
    xs = sorted(xs)
    return {"min": round(xs[0], 1), "median": round(median(xs), 1), "max": round(xs[-1], 1)}


def threshold_choose(
    series: Sequence[LinkSeries],
    prob: Callable[[LinkSeries], list[float]],
    *,
    max_false_share: float = 0.2,
    horizon_ms: float = HORIZON_MS,
) -> tuple[float, dict[str, Any]]:
    """The threshold that catches the most freezes 2 s ahead with at most
    ``max_false_share`` false alarms (ties: fewer false alarms, then higher)."""
    probs = [prob(ls) for ls in series]
    best: tuple[tuple[float, float, float], float, dict[str, Any]] | None = None
    for k in range(5, 100, 5):
        th = k / 100
        sc = score(series, [[p >= th for p in ps] for ps in probs], horizon_ms=horizon_ms)
        share = sc["false_alarm_share"] or 0.0
        ok = share <= max_false_share
        key = (float(ok), sc["recall_2s"] or 0.0, -share)
        if best is None or key > best[0] or (key == best[0] and th > best[1]):
            best = (key, th, sc)
    assert best is not None
    return best[1], best[2]


def freeze_totals(series: Sequence[LinkSeries]) -> list[dict[str, Any]]:
    """Per profile and mode: the freeze time the receivers' browsers reported
    (``freeze_ms``; Chrome counts a gap over 5 s as a pause, not a freeze), the
    lab's stall time (frames >= 1 s apart, from its 500 ms ticks; summary.json), and
    the time in freeze episodes as labelled here (from onset, a lower bound, to end)."""
    acc: dict[tuple[str, str], dict[str, float]] = {}
    for ls in series:
        a = acc.setdefault(
            (ls.profile, ls.mode),
            {"freeze_ms": 0.0, "stall_ms": 0.0, "stall_links": 0, "episode_ms": 0.0,
             "episodes": 0, "ms": 0.0},
        )  # fmt: skip
        a["freeze_ms"] += ls.freeze_ms
        if ls.lab_stall_ms is not None:
            a["stall_ms"] += ls.lab_stall_ms
            a["stall_links"] += 1
        a["episode_ms"] += sum(e.end - e.onset for e in ls.episodes)
        a["episodes"] += len(ls.episodes)
        if len(ls.samples) > 1:
            a["ms"] += ls.samples[-1]["t"] - ls.samples[0]["t"]
    return [
        {
            "profile": p,
            "mode": m,
            "browser_freeze_s": round(a["freeze_ms"] / 1000, 1),
            "lab_stall_s": round(a["stall_ms"] / 1000, 1) if a["stall_links"] else None,
            "episode_s": round(a["episode_ms"] / 1000, 1),
            "episodes": int(a["episodes"]),
            "link_minutes": round(a["ms"] / 60_000, 1),
        }
        for (p, m), a in sorted(acc.items())
    ]
