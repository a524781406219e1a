"""Candidate freeze predictors against the shipped recipe, on held-out lab runs.

    .venv/bin/python bench/predict_candidates.py \
        --train quality/recordings/pred-g--* --held quality/recordings/pred-h--* [--json]

Each candidate is trained on the ``--train`` runs, its alarm threshold chosen on them
exactly as ``quality_train`` chooses it (quality/evaluation.py ``threshold_choose``:
the most freezes caught >= 2 s ahead with at most 20 % false alarms per sample, else
the best recall x precision, at least 0.05 above what it says on a clean path), and
scored on the ``--held`` runs by ``quality.evaluation.score`` (per sample and per alarm
episode, docs/adaptation.md "How it is scored"), overall and per profile. Beside it,
leave-one-run-out over all the given runs (train on every run but one, threshold
chosen on those, score on the one left out).

Candidates:
- ``shipped``: the shipped recipe (quality/features.py, logistic regression);
- ``+queue``: plus the queueing delay, RTT now minus the lowest RTT of the link's
  last 30 s (the 15 samples the browser hands a predictor);
- ``+trends``: plus the queueing delay, the last step's RTT and loss acceleration
  (second differences), the available bitrate's drop from its 30 s peak, the
  available bitrate over the window's highest send rate, the inbound bitrate's drop;
- ``gbt``, ``gbt+trends``: gradient-boosted trees (40 trees of depth 2, balanced
  sample weights) on the same features: a model the browser could evaluate from
  plain JSON.

Only the shipped recipe runs in the browser; the others are computed here (Python)
to see whether they would be worth porting to static/js/predict.js.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # offline: development settings

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from quality.dataset import LinkSeries, link_series  # noqa: E402
from quality.evaluation import score, threshold_choose  # noqa: E402
from quality.features import _filled, _num, clip, window_of  # noqa: E402
from quality.recordings import RecordingError, runs_find  # noqa: E402

HISTORY = 15  # samples the browser's controller keeps per link (call-controller.js)
HISTORY_MS = 32_000


def _d2(values: Sequence[float | None]) -> float:
    if len(values) < 3 or any(v is None for v in values[-3:]):
        return 0.0
    a, b, c = values[-3], values[-2], values[-1]
    assert a is not None and b is not None and c is not None
    return (c - b) - (b - a)


def extra_features(history: Sequence[dict[str, Any]]) -> list[float]:
    """queue, rtt_d2, loss_d2, bw_drop, bw_over_send_max, recv_drop."""
    w = window_of(history)
    newest = history[-1]["t"]
    long = [s for s in history[-HISTORY:] if newest - s["t"] <= HISTORY_MS]
    rtt = _filled(w, "rtt", None)
    rtt_long = [v for v in (_num(s, "rtt") for s in long) if v is not None]
    now = rtt[-1] if rtt else None
    queue = (now - min(rtt_long)) / 1000 if now is not None and rtt_long else 0.0
    loss = _filled(w, "loss_out", None)
    bw = _filled(w, "bw_out", None)
    bw_long = [v for v in (_num(s, "bw_out") for s in long) if v is not None]
    send = [v for v in _filled(w, "send_kbps", None) if v is not None]
    bw_now = bw[-1] if bw else None
    bw_drop = 0.0
    if bw_now is not None and bw_long and max(bw_long) > 30:
        bw_drop = clip(1 - bw_now / max(bw_long), 0, 1)
    bw_send = 4.0
    if bw_now is not None and send:
        bw_send = clip(bw_now / max(max(send), 30), 0, 4)
    recv = _filled(w, "recv_kbps", None)
    rv = [v for v in recv if v is not None]
    recv_drop = 0.0
    if rv and recv[-1] is not None and max(rv) > 30:
        recv_drop = clip(1 - recv[-1] / max(rv), 0, 1)
    return [
        queue,
        clip(_d2(rtt) / 1000, -1, 1),
        clip(_d2(loss), -1, 1),
        bw_drop,
        bw_send,
        recv_drop,
    ]


Rows = Callable[[LinkSeries], np.ndarray]


def rows_of(extra: int) -> Rows:
    def rows(ls: LinkSeries) -> np.ndarray:
        xe: list[list[float]] = ls.xe  # type: ignore[attr-defined]
        return np.array([x + e[:extra] for x, e in zip(ls.x, xe, strict=True)], dtype=float)

    return rows


def fit(train: Sequence[LinkSeries], rows: Rows, kind: str) -> Callable[[LinkSeries], list[float]]:
    xs = np.vstack([rows(ls)[np.array(ls.use)] for ls in train if any(ls.use)])
    ys = np.array([y for ls in train for y, u in zip(ls.y, ls.use, strict=True) if u])
    if kind == "logistic":
        sc = StandardScaler().fit(xs)
        scale = np.where(sc.scale_ > 0, sc.scale_, 1.0)
        lr = LogisticRegression(class_weight="balanced", max_iter=3000)
        lr.fit((xs - sc.mean_) / scale, ys)
        return lambda ls: list(lr.predict_proba((rows(ls) - sc.mean_) / scale)[:, 1])
    weight = np.where(ys == 1, (len(ys) - ys.sum()) / max(ys.sum(), 1), 1.0)
    gb = GradientBoostingClassifier(
        n_estimators=40, max_depth=2, min_samples_leaf=10, random_state=0
    ).fit(xs, ys, sample_weight=weight)
    return lambda ls: list(gb.predict_proba(rows(ls))[:, 1])


CANDIDATES: dict[str, tuple[int, str]] = {
    "shipped": (0, "logistic"),
    "+queue": (1, "logistic"),
    "+trends": (6, "logistic"),
    "gbt": (0, "gbt"),
    "gbt+trends": (6, "gbt"),
}


def evaluate(
    train: Sequence[LinkSeries], held: Sequence[LinkSeries], extra: int, kind: str
) -> tuple[float, list[list[bool]]]:
    prob = fit(train, rows_of(extra), kind)
    th, _ = threshold_choose(train, prob)
    return th, [[p >= th for p in prob(ls)] for ls in held]


def brief(sc: dict[str, Any]) -> dict[str, Any]:
    ep = sc["episodes"]
    return {
        "freezes": sc["freezes"],
        "caught_2s": sc["caught_2s"],
        "recall_2s": sc["recall_2s"],
        "alarms": sc["alarms"],
        "precision": sc["precision"],
        "episodes": ep["alarms"],
        "episode_precision": ep["precision"],
        "episode_false_per_min": ep["false_alarms_per_min"],
        "lead_median_s": sc["lead_s"]["median"],
    }


def load(paths: list[Path]) -> list[LinkSeries]:
    series = [ls for r in runs_find(paths) for ls in link_series(r)]
    for ls in series:
        ls.xe = [extra_features(ls.samples[: i + 1]) for i in range(len(ls.samples))]  # type: ignore[attr-defined]
    return series


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, nargs="+", required=True)
    ap.add_argument("--held", type=Path, nargs="+", required=True)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        train, held = load(args.train), load(args.held)
    except RecordingError as exc:
        sys.exit(f"predict_candidates: {exc}")
    both = [*train, *held]
    runs = sorted({ls.run for ls in both})
    report: dict[str, Any] = {}
    for name, (extra, kind) in CANDIDATES.items():
        th, al = evaluate(train, held, extra, kind)
        profiles = sorted({ls.profile for ls in held})
        by_profile = {
            p: brief(score([held[i] for i in idx], [al[i] for i in idx]))
            for p in profiles
            for idx in [[i for i, ls in enumerate(held) if ls.profile == p]]
        }
        cv_series: list[LinkSeries] = []
        cv_alarms: list[list[bool]] = []
        for r in runs:
            out = [ls for ls in both if ls.run == r]
            _, a = evaluate([ls for ls in both if ls.run != r], out, extra, kind)
            cv_series += out
            cv_alarms += a
        report[name] = {
            "threshold": th,
            "held_out": brief(score(held, al)),
            "by_profile": by_profile,
            "leave_one_run_out": brief(score(cv_series, cv_alarms)),
        }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    cols = ("recall_2s", "caught_2s", "alarms", "precision", "episodes", "episode_precision",
            "episode_false_per_min", "lead_median_s")  # fmt: skip
    print(f"{'candidate':<12}{'scope':<22}{'th':>6}" + "".join(f"{c[:12]:>13}" for c in cols))
    for name, r in report.items():
        scopes = [("held out", r["held_out"]), *r["by_profile"].items()]
        scopes.append(("leave-one-run-out", r["leave_one_run_out"]))
        for scope, sc in scopes:
            cells = "".join(f"{'-' if sc[c] is None else sc[c]!s:>13}" for c in cols)
            print(f"{name:<12}{scope:<22}{r['threshold']:>6}{cells}")


if __name__ == "__main__":
    main()
