"""``/metrics/scaling``: the stored recommendation in Prometheus text format, for an
HPA (through prometheus-adapter) or a KEDA prometheus/metrics-api scaler.

Standalone on purpose: the full /metrics endpoint can fold ``scaling_registry`` in.
Staff sessions or ``Authorization: Bearer <SCALING_METRICS_TOKEN>`` only.
"""

import hmac
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from . import conf, selectors


def _allowed(request: HttpRequest) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = conf.metrics_token()
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())


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
    if not _allowed(request):
        response = HttpResponse("staff or a bearer token only\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scaling_registry()), content_type=CONTENT_TYPE_LATEST)
