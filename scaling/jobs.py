"""rq job (deliveries/cron.py registers it every minute): sample this node, and
every SCALING_FORECAST_EVERY_MIN minutes refresh the recommendation."""

from typing import Any

from . import conf, services
from .model import NotEnoughHistory


def sample_load() -> dict[str, Any]:
    doc = services.load_sample_record()
    report: dict[str, Any] = {
        k: doc[k] for k in ("node", "sockets", "cpu", "present", "in_call", "deliveries_per_s")
    }
    report["minute"] = doc["minute"].isoformat()
    every = conf.forecast_every_min()
    if every and doc["minute"].minute % every == 0:
        try:
            rec = services.recommendation_compute(horizon=60)
        except NotEnoughHistory as exc:
            # The first two days: keep sampling; the gauge stays absent.
            report["forecast"] = f"skipped: {exc}"
        else:
            services.recommendation_store(recommendation=rec)
            report["recommended_nodes"] = rec["recommended_nodes"]
    return report
