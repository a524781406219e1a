"""Writes: record a load sample, compute and store the recommendation."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from deliveries.connections import sync_redis

from . import conf, probes, samples, selectors
from .model import HoltWinters, nodes_needed

DAY_MINUTES = 1440


def load_sample_record(
    *, node: str | None = None, now: datetime | None = None, write: bool = True
) -> dict[str, Any]:
    """Measure this node and the cluster for the current minute and store it.

    Returns the document. Raises PyMongoError when MongoDB is unreachable.
    """
    node = node or conf.node_name()
    minute = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    previous = samples.sample_latest(node=node, before=minute)
    if previous and minute - previous["minute"] > timedelta(minutes=10):
        previous = None  # too old to difference against
    busy, total = probes.cpu_counters()
    if previous and total > previous.get("cpu_total_s", total):
        cpu = (busy - previous["cpu_busy_s"]) / (total - previous["cpu_total_s"])
    else:
        cpu = psutil.cpu_percent(interval=0.5) / 100
    hour, count, rate = probes.delivery_rate(now=minute, previous=previous)
    doc: dict[str, Any] = {
        "node": node,
        "minute": minute,
        "sockets": probes.node_sockets(port=conf.web_port()),
        "cpu": round(min(max(cpu, 0.0), 1.0), 4),
        "cpu_busy_s": busy,
        "cpu_total_s": total,
        "load1": round(probes.load_per_core(), 3),
        **probes.cluster_presence(),
        "deliveries_per_s": round(rate, 3),
        "dlv_hour": hour,
        "dlv_count": count,
    }
    if write:
        samples.sample_write(doc=doc)
    return doc


def recommendation_compute(
    *,
    horizon: int,
    metric: str = "sockets",
    history_days: int = 14,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Fit the daily model on the history, forecast ``horizon`` minutes and turn
    the peak (never below the latest step) into a node count.

    Raises model.NotEnoughHistory with fewer than two days of samples.
    """
    now = now or datetime.now(UTC)
    step = selectors.STEP_MINUTES
    series, origin = selectors.load_series(
        metric=metric, since=now - timedelta(days=history_days), until=now, step=step
    )
    model = HoltWinters.fit(series, period=DAY_MINUTES // step)
    # Season index of the next step: origin is step-aligned, and the series runs
    # to the current step, so the model's clock is right.
    forecast = model.forecast(selectors.steps_for(horizon, step))
    capacity = conf.node_capacity_sockets()
    utilisation = conf.target_utilisation()

    def need(load: float) -> int:
        return nodes_needed(
            load=load,
            capacity=capacity,
            target_utilisation=utilisation,
            min_nodes=conf.min_nodes(),
            max_nodes=conf.max_nodes(),
        )

    # Rounded as reported, and the node count from the reported figure: a peak of
    # 1000.04 shown as 1000.0 must not recommend a third node of 500 (the night's
    # baseline sat on that boundary: tests/test_scaling_live.py failed at 00:20 UTC).
    latest = round(float(series[-1]), 1)
    peak = round(max(float(forecast.max()), latest), 1)
    assert origin is not None  # a fitted series has samples
    start = origin + timedelta(minutes=step * len(series))
    return {
        "metric": metric,
        "computed_at": now.isoformat(),
        "horizon_minutes": horizon,
        "history_steps": len(series),
        "latest": latest,
        "peak_forecast": peak,
        "recommended_nodes": need(peak),
        "nodes_for_latest": need(latest),
        "nodes_reporting": selectors.nodes_reporting(now=now),
        "capacity_per_node": capacity,
        "target_utilisation": utilisation,
        "weights": {"alpha": model.alpha, "beta": model.beta, "gamma": model.gamma},
        "steps": [
            {
                "at": (start + timedelta(minutes=step * i)).isoformat(),
                "forecast": round(float(v), 1),
                "nodes": need(float(v)),
            }
            for i, v in enumerate(forecast)
        ],
    }


def recommendation_store(*, recommendation: dict[str, Any]) -> None:
    sync_redis().set(selectors.RECOMMENDATION_KEY, json.dumps(recommendation))
