"""``GET /metrics``: every process's metrics plus figures read from the stores.

Staff sessions, or ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant
time); no credentials is 401, the wrong ones 403. A store that does not answer
within ``SCRAPE_TIMEOUT_S`` never fails the scrape: its figures are left out and
``huddle_scrape_source_up{source=...}`` says 0.
"""

import hmac
import os
from collections.abc import Iterable, Iterator
from typing import Any

import pymongo
import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from deliveries import breaker, deadletters
from rooms.presence import presence_counts_sync

from . import metricsdir
from .redis import sync_client

log = structlog.get_logger(__name__)

# Families the scrape adds from the stores and scaling (docs/operations.md, "Metrics").
STORE_METRICS = (
    "huddle_presence_peers",
    "huddle_presence_rooms",
    "huddle_breaker_state",
    "huddle_dead_letters",
    "huddle_scrape_source_up",
)
SCALING_METRICS = (
    "huddle_recommended_nodes",
    "huddle_forecast_peak_load",
    "huddle_recommendation_timestamp_seconds",
)
SCRAPE_TIMEOUT_S = 0.5
# Rooms listed one by one in huddle_presence_peers; the busiest first past this.
PRESENCE_ROOMS_MAX = 500


def access(request: HttpRequest) -> int:
    """200 if allowed, else the status to refuse with (401 no credentials, 403 wrong)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return 200
    status = bearer_status(request.headers.get("Authorization", ""))
    if status == 401 and user is not None and user.is_authenticated:
        return 403
    return status


def bearer_status(header: str) -> int:
    """200 for ``Bearer <METRICS_TOKEN>``, 401 for no bearer, 403 for any other."""
    if not header.startswith("Bearer "):
        return 401
    token = settings.METRICS_TOKEN
    offered = header[len("Bearer ") :].encode()
    if token and hmac.compare_digest(offered, token.encode()):
        return 200
    return 403


def refused(status: int) -> HttpResponse:
    response = HttpResponse("staff or a bearer token only\n", status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def dead_processes_forget(path: str) -> None:
    """Drop live gauges of dead processes, and their files that hold only zeros."""
    for pid, files in metricsdir.files_by_pid(metricsdir.Path(path)).items():
        if pid == os.getpid() or metricsdir.pid_alive(pid):
            continue
        mark_process_dead(pid, path)
        for f in files:
            if f.name.startswith(metricsdir.LIVE_GAUGE_PREFIX) or not f.exists():
                continue
            try:
                values = MmapedDict.read_all_values_from_file(str(f))
                if all(value == 0 for _, value, _, _ in values):
                    f.unlink(missing_ok=True)
            except (OSError, ValueError):  # pragma: no cover - half-written file
                continue


def _source_up(up: dict[str, bool]) -> Metric:
    family = GaugeMetricFamily(
        "huddle_scrape_source_up",
        "1 if the store answered this scrape, 0 if its figures are missing",
        labels=["source"],
    )
    for source, ok in sorted(up.items()):
        family.add_metric([source], 1.0 if ok else 0.0)
    return family


def _redis_scan(pattern: str, client: Any) -> list[str]:
    return [str(k) for k in client.scan_iter(match=pattern, count=1000)]


class StoreCollector(Collector):
    """Presence per room and breaker states (Redis), dead letters (MongoDB)."""

    def collect(self) -> Iterable[Metric]:
        up: dict[str, bool] = {}
        try:
            yield from self._redis()
            up["redis"] = True
        except Exception as exc:  # noqa: BLE001 - a scrape never fails on a store
            log.warning("metrics.source_failed", source="redis", error=repr(exc)[:200])
            up["redis"] = False
        try:
            yield from self._mongo()
            up["mongodb"] = True
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics.source_failed", source="mongodb", error=repr(exc)[:200])
            up["mongodb"] = False
        try:
            if not up["redis"]:
                # Its recommendation is in Redis too, behind the shared client's 2 s
                # connect timeout: not worth a slow scrape.
                raise ConnectionError("redis did not answer")
            yield from _scaling()
            up["scaling"] = True
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics.source_failed", source="scaling", error=repr(exc)[:200])
            up["scaling"] = False
        yield _source_up(up)

    def _redis(self) -> Iterator[Metric]:
        # Its own short-lived client: the shared one waits 5 s on a dead server.
        client = sync_client(
            decode_responses=True,
            socket_connect_timeout=SCRAPE_TIMEOUT_S,
            socket_timeout=SCRAPE_TIMEOUT_S,
        )
        try:
            present = presence_counts_sync(client=client)
            breakers = _redis_scan(breaker.KEY_PREFIX + "*", client)
            with client.pipeline(transaction=False) as pipe:
                for key in breakers:
                    pipe.hget(key, "state")
                results = pipe.execute()
        finally:
            client.close()
        counts = sorted(present.items(), key=lambda kv: -kv[1])
        peers = GaugeMetricFamily(
            "huddle_presence_peers",
            f"Peers present per room id (Redis presence; the {PRESENCE_ROOMS_MAX} busiest rooms)",
            labels=["room"],
        )
        for room_id, count in counts[:PRESENCE_ROOMS_MAX]:
            peers.add_metric([str(room_id)], float(count))
        yield peers
        yield GaugeMetricFamily(
            "huddle_presence_rooms",
            "Rooms with at least one peer present",
            value=float(len(counts)),
        )
        states = GaugeMetricFamily(
            "huddle_breaker_state",
            "Circuit breaker per delivery target: 1 for its current state",
            labels=["target", "state"],
        )
        for key, state in zip(breakers, results, strict=True):
            current = state or "closed"
            for name in ("closed", "open", "half_open"):
                states.add_metric(
                    [key[len(breaker.KEY_PREFIX) :], name], 1.0 if current == name else 0.0
                )
        yield states

    def _mongo(self) -> Iterator[Metric]:
        with pymongo.timeout(SCRAPE_TIMEOUT_S):
            counts = deadletters.deadletter_counts()
        family = GaugeMetricFamily(
            "huddle_dead_letters", "Dead letters in MongoDB by status", labels=["status"]
        )
        for status, count in sorted(counts.items()):
            family.add_metric([status], float(count))
        yield family


def _scaling() -> Iterator[Metric]:
    # The /metrics/scaling gauges (scaling/views.py), folded in.
    from scaling.views import scaling_registry

    yield from scaling_registry().collect()


def registry(*, stores: bool = True) -> CollectorRegistry:
    """This node's process metrics, and (``stores``) the figures read from the stores."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    dead_processes_forget(path)
    reg = CollectorRegistry()
    MultiProcessCollector(reg, path=path)
    if stores:
        reg.register(StoreCollector())
    return reg


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    status = access(request)
    if status != 200:
        return refused(status)
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
