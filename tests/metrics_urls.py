"""URLs for tests/test_metrics.py: the project's, plus a view that logs one line."""

import structlog
from django.http import HttpRequest, HttpResponse
from django.urls import path

from videochat.urls import urlpatterns as project_urlpatterns

log = structlog.get_logger("tests.metrics")


def logs_a_line(request: HttpRequest) -> HttpResponse:
    log.info("probe.seen")
    return HttpResponse("ok")


urlpatterns = [path("probe/", logs_a_line), *project_urlpatterns]
