"""``/metrics/scaling``: the stored recommendation in Prometheus text format, for an
HPA (through prometheus-adapter) or a KEDA prometheus/metrics-api scaler.

The same gauges are part of the full ``/metrics`` (videochat/metricsview.py); this
smaller page stays for an autoscaler's adapter, behind the same access rule: staff
sessions or ``Authorization: Bearer <METRICS_TOKEN>``.
"""

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from videochat import metricsview

from . import conf, selectors


def scaling_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge(
        "huddle_node_capacity_sockets",
        "Sockets one node carries at 100 % (SCALING_NODE_CAPACITY_SOCKETS)",
        registry=registry,
    ).set(conf.node_capacity_sockets())
    rec = selectors.recommendation_get()
    if rec is None:
        # No gauge rather than a made-up 0: the autoscaler keeps its current size.
        return registry
    Gauge(
        "huddle_recommended_nodes",
        "Nodes for the forecast peak of the next hour at the target utilisation",
        registry=registry,
    ).set(rec["recommended_nodes"])
    Gauge(
        "huddle_forecast_peak_load",
        "Forecast peak load (sockets) over the horizon",
        registry=registry,
    ).set(rec["peak_forecast"])
    Gauge(
        "huddle_recommendation_timestamp_seconds",
        "When the recommendation was computed (alert when it grows old)",
        registry=registry,
    ).set(datetime.fromisoformat(rec["computed_at"]).timestamp())
    return registry


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    status = metricsview.access(request)
    if status != 200:
        return metricsview.refused(status)
    return HttpResponse(generate_latest(scaling_registry()), content_type=CONTENT_TYPE_LATEST)
