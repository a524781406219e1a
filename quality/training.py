"""Fit the freeze predictor (scikit-learn logistic regression on standardised
features) and export it as the JSON the browser evaluates (static/js/predict.js)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from .dataset import HORIZON_MS, LinkSeries
from .evaluation import threshold_choose
from .features import FEATURES, MAX_AGE_MS, WINDOW, probability

MODEL_VERSION = 1


class NotEnoughData(ValueError):
    pass


def training_arrays(series: Sequence[LinkSeries]) -> tuple[np.ndarray, np.ndarray]:
    xs = [x for ls in series for x, u in zip(ls.x, ls.use, strict=True) if u]
    ys = [y for ls in series for y, u in zip(ls.y, ls.use, strict=True) if u]
    return np.asarray(xs, dtype=float).reshape(-1, len(FEATURES)), np.asarray(ys, dtype=int)


def model_fit(
    series: Sequence[LinkSeries],
    *,
    horizon_ms: float = HORIZON_MS,
    c: float = 1.0,
    max_false_share: float = 0.2,
) -> dict[str, Any]:
    """The exported model: features, scaler, weights, the alarm threshold chosen on
    the training series, and where it came from. NotEnoughData without both classes."""
    x, y = training_arrays(series)
    positives = int(y.sum())
    if positives < 3 or len(y) - positives < 3:
        raise NotEnoughData(
            f"{len(y)} usable samples, {positives} before a freeze: need at least 3 of each "
            "(record runs with freezes, e.g. the tunnel or collapse profiles)"
        )
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit((x - scaler.mean_) / scale, y)
    model: dict[str, Any] = {
        "version": MODEL_VERSION,
        "kind": "logistic",
        "features": list(FEATURES),
        "window": WINDOW,
        "max_age_ms": MAX_AGE_MS,
        "horizon_ms": horizon_ms,
        "mean": [round(float(v), 6) for v in scaler.mean_],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [round(float(v), 6) for v in clf.coef_[0]],
        "intercept": round(float(clf.intercept_[0]), 6),
        "threshold": 0.5,
    }
    th, sc = threshold_choose(
        series,
        lambda ls: [probability(model, v) for v in ls.x],
        max_false_share=max_false_share,
        horizon_ms=horizon_ms,
    )
    model["threshold"] = th
    model["trained"] = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runs": sorted({ls.run for ls in series}),
        "samples": len(y),
        "positives": positives,
        "on_training_runs": sc,
    }
    return model
