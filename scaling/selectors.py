"""Reads: the load history as a regular series, the stored recommendation."""

import json
import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from deliveries.connections import sync_redis

from . import samples

STEP_MINUTES = 5
RECOMMENDATION_KEY = "scaling:recommendation"
# Per node (summed over nodes) or the cluster's own figure (the same in every
# node's document: the largest is taken, in case one node read Redis late).
METRICS = {"sockets": "sum", "present": "max", "in_call": "max"}


def load_series(
    *, metric: str, since: datetime, until: datetime, step: int = STEP_MINUTES
) -> tuple[np.ndarray, datetime | None]:
    """Mean ``metric`` per ``step`` minutes from the first sample to ``until``
    (exclusive, floored to a step), and the start of the first step.

    Per node and step the minutes are averaged, then nodes are summed, so a node
    that missed a minute does not read as a dip; steps nobody sampled are
    interpolated. Returns an empty series when there are no samples.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    docs = samples.samples_since(since=since)
    docs = [d for d in docs if d["minute"] < until and d.get(metric) is not None]
    if not docs:
        return np.zeros(0), None
    origin = _floor(docs[0]["minute"], step)
    n = int((_floor(until, step) - origin).total_seconds() // (60 * step))
    if n <= 0:
        return np.zeros(0), origin
    per_node: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for d in docs:
        i = int((d["minute"] - origin).total_seconds() // (60 * step))
        if i >= n:
            continue
        total, count = per_node.setdefault(d["node"], (np.zeros(n), np.zeros(n)))
        total[i] += float(d[metric])
        count[i] += 1
    if not per_node:
        return np.zeros(0), origin
    means = [np.where(c > 0, t / np.maximum(c, 1), np.nan) for t, c in per_node.values()]
    stacked = np.vstack(means)
    seen = ~np.all(np.isnan(stacked), axis=0)
    if METRICS[metric] == "sum":
        series = np.nansum(stacked, axis=0)
    else:
        series = np.nanmax(np.where(np.isnan(stacked), -np.inf, stacked), axis=0)
    idx = np.arange(n)
    series = np.interp(idx, idx[seen], series[seen])
    return series, origin


def _floor(t: datetime, step: int) -> datetime:
    return t.replace(minute=t.minute - t.minute % step, second=0, microsecond=0)


def nodes_reporting(*, now: datetime, within_minutes: int = 3) -> int:
    since = now - timedelta(minutes=within_minutes)
    return len({d["node"] for d in samples.samples_since(since=since)})


def recommendation_get() -> dict[str, Any] | None:
    raw = sync_redis().get(RECOMMENDATION_KEY)
    return json.loads(str(raw)) if raw else None


def steps_for(minutes: int, step: int = STEP_MINUTES) -> int:
    return math.ceil(minutes / step)
