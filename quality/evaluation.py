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

Beside it (never instead of it), alarms counted the way alarm systems are: an alarm
episode is a run of firing counted samples of one link, two firing samples belonging to
the same episode when at most one counted sample that does not fire lies between them
(uncounted samples, audio only or during a freeze, are skipped: they neither fire nor
end an episode); an episode is true when a freeze of that link starts after its first
sample, while it lasts or within the horizon after its last sample (so an episode
holding a true alarm is true), else false.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import median
from typing import Any

from .dataset import HORIZON_MS, LinkSeries
from .features import probability

# The reactive ladder is replayed by its own code: quality/replay_ladder.mjs runs
# static/js/call-quality.js SendLadder (LADDER_DEFAULTS, LEVEL_ENCODINGS, the rules as
# they are) under node on each link's recorded samples, its level moving as in the
# call (down on each alarm, back up by its own rules), so a lasting cap is one or two
# alarms as in the call, not one per sample. An alarm is a step down.
REPLAY_SCRIPT = Path(__file__).with_name("replay_ladder.mjs")
VIEW_KEYS = ("t", "rtt", "loss_out", "bw_out", "send_kbps", "qlr")

Alarms = list[bool]


class LadderReplayError(RuntimeError):
    """node is missing or the replay failed."""


def alarms_reactive_all(series: Sequence[LinkSeries]) -> list[Alarms]:
    """Where the send ladder steps down, per link and sample (one node process)."""
    node = shutil.which("node")
    if node is None:
        raise LadderReplayError("the reactive ladder is replayed with node, not found on PATH")
    views = [[{k: s.get(k) for k in VIEW_KEYS} for s in ls.samples] for ls in series]
    try:
        proc = subprocess.run(
            [node, str(REPLAY_SCRIPT)],
            input=json.dumps(views),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LadderReplayError("the ladder replay took over 120 s") from exc
    if proc.returncode != 0:
        raise LadderReplayError(f"the ladder replay failed: {proc.stderr.strip()[-500:]}")
    out = json.loads(proc.stdout)
    if len(out) != len(series) or any(
        len(a) != len(ls.samples) for a, ls in zip(out, series, strict=True)
    ):
        raise LadderReplayError("the ladder replay answered for other series than asked")
    return [[bool(x) for x in a] for a in out]


def alarms_reactive(ls: LinkSeries) -> Alarms:
    return alarms_reactive_all([ls])[0]


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
    ep_true = ep_false = 0
    ep_lengths: list[float] = []
    for ls, al in zip(series, alarms, strict=True):
        ts = ls.t
        onsets = [e.onset for e in ls.episodes]
        for first, last in alarm_episodes(ls, al):
            t0, t1 = ts[first], ts[last]
            if any(t0 < o <= t1 + horizon_ms for o in onsets):
                ep_true += 1
            else:
                ep_false += 1
            ep_lengths.append((t1 - t0) / 1000)
    n_eps = ep_true + ep_false
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
        "episodes": {
            "alarms": n_eps,
            "true": ep_true,
            "precision": round(ep_true / n_eps, 3) if n_eps else None,
            "false_alarm_share": round(ep_false / n_eps, 3) if n_eps else None,
            "false_alarms_per_min": round(ep_false / minutes, 2) if minutes else None,
            "length_s": _dist(ep_lengths),
        },
    }


def alarm_episodes(ls: LinkSeries, al: Alarms) -> list[tuple[int, int]]:
    """The link's alarm episodes as (first, last) sample indexes: runs of firing
    counted samples, a gap of one counted sample that does not fire merged,
    uncounted samples skipped."""
    out: list[tuple[int, int]] = []
    first = last = -1
    quiet = 0  # counted samples that did not fire since the last firing one
    for i, counted in enumerate(ls.use):
        if not counted:
            continue
        if al[i]:
            if first < 0 or quiet > 1:
                if first >= 0:
                    out.append((first, last))
                first = i
            last = i
            quiet = 0
        else:
            quiet += 1
    if first >= 0:
        out.append((first, last))
    return out


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
    calm_margin: float = 0.05,
    horizon_ms: float = HORIZON_MS,
) -> tuple[float, dict[str, Any]]:
    """The threshold that catches the most freezes 2 s ahead with at most
    ``max_false_share`` false alarms (ties: fewer false alarms, then higher). When no
    threshold keeps false alarms that low, the one with the best recall >= 2 s times
    precision (ties: higher): the highest recall alone would be an alarm that never
    stops, and in the call every alarm costs the link its picture quality. Either way
    at least ``calm_margin`` above the highest probability on a calm sample (a clean
    path, ``LinkSeries.calm``): a predictor that fires on a clean link costs video for
    nothing."""
    probs = [prob(ls) for ls in series]
    calm = [
        p
        for ls, ps in zip(series, probs, strict=True)
        for c, p in zip(ls.calm, ps, strict=True)
        if c
    ]
    floor = max(calm) + calm_margin if calm else 0.0
    scored = []
    for k in range(5, 100, 5):
        th = k / 100
        if th < floor and k < 95:
            continue
        sc = score(series, [[p >= th for p in ps] for ps in probs], horizon_ms=horizon_ms)
        scored.append((th, sc))
    within = [(th, sc) for th, sc in scored if (sc["false_alarm_share"] or 0.0) <= max_false_share]
    if within:

        def key(item: tuple[float, dict[str, Any]]) -> tuple[float, float, float]:
            th, sc = item
            return (sc["recall_2s"] or 0.0, -(sc["false_alarm_share"] or 0.0), th)

        return max(within, key=key)

    def balanced(item: tuple[float, dict[str, Any]]) -> tuple[float, float]:
        th, sc = item
        return ((sc["recall_2s"] or 0.0) * (sc["precision"] or 0.0), th)

    return max(scored, key=balanced)


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
