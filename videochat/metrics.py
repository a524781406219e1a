"""The metrics every process records, and one small function per thing recorded.

Callers say what happened (``metrics.frame_in(frame_type)``); this module owns the
names, types and labels (listed in docs/operations.md, "Metrics"). Values are
written to the per-process files of prometheus-client's multiprocess mode
(``videochat/metricsdir.py``), so Celery, rq and every daphne worker add up in one
scrape of ``/metrics`` (``videochat/metricsview.py``). Figures that live in a store
(presence per room, breaker states, dead letters) are read there at scrape time
instead.

Label values come from closed sets (the protocol's frame types, delivery outcomes,
exception class names) so a client cannot grow the number of series.
"""

import os
import re
import time
from collections.abc import Callable
from typing import Any

if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:  # pragma: no cover - settings sets it
    raise RuntimeError("import videochat.settings (PROMETHEUS_MULTIPROC_DIR) before metrics")

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402

SOCKETS_OPEN = Gauge(
    "huddle_sockets_open",
    "Room sockets accepted and not yet closed, on this node",
    multiprocess_mode="livesum",
)
FRAMES_IN = Counter(
    "huddle_frames_in_total", "Socket frames received (parsed JSON objects) by type", ["type"]
)
FRAMES_OUT = Counter("huddle_frames_out_total", "Socket frames sent by type", ["type"])
CHAT_COMMIT = Histogram(
    "huddle_chat_commit_seconds",
    "chat.send queued to durable (the wait before its ack): group commit in messaging/writer.py",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CHAT_COMMIT_FAILED = Counter(
    "huddle_chat_commit_failed_total", "chat.send writes that failed (no ack; the client resends)"
)
GAPS_REPAIRED = Counter(
    "huddle_wakeup_gaps_repaired_total",
    "chat.sync requests that returned messages the client had not had (a lost or missed wake-up)",
)
GAP_MESSAGES = Counter(
    "huddle_wakeup_gap_messages_total", "Messages returned by chat.sync (repairs and catch-up)"
)
SIGNALS = Counter(
    "huddle_signals_total",
    "Call signals (offer, answer, ICE) by outcome: relayed, held (target resuming), "
    "refused_unknown_peer, refused_busy",
    ["type", "outcome"],
)
DELIVERIES = Counter(
    "huddle_deliveries_total",
    "Delivery task runs by kind and outcome (delivered, retry, waiting, dead, done_before, "
    "busy, error)",
    ["kind", "outcome"],
)
DEAD_LETTERS_WRITTEN = Counter(
    "huddle_dead_letters_written_total", "Deliveries given up and dead-lettered", ["kind"]
)
CALL_STATS_SAMPLES = Counter(
    "huddle_call_stats_samples_total",
    "call.stats samples by outcome: stored (in MongoDB), failed (the write failed), dropped "
    "(the writer's queue was full), refused (malformed frame), foreign (about a peer not in "
    "the call)",
    ["outcome"],
)
STORE_ERRORS = Counter(
    "huddle_store_errors_total",
    "Errors talking to a store (redis, database), by exception class",
    ["store", "error"],
)

# Frame types a client may send; anything else is counted as "unknown".
_known_in: Callable[[str], bool] = lambda t: False  # noqa: E731 - replaced at start-up
_TYPE_PREFIX = re.compile(r'^\{"type": ?"([a-z][a-z0-9_.]{0,39})"')


def known_frame_types(check: Callable[[str], bool]) -> None:
    """Register the protocol's registry check (``rooms`` does at ready; no import cycle)."""
    global _known_in
    _known_in = check


# Per-frame counters: their children cached (labels() costs a lock and a lookup per call).
_in_children: dict[str, Any] = {}
_out_children: dict[str, Any] = {}


def frame_in(frame_type: object) -> None:
    label = frame_type if isinstance(frame_type, str) and _known_in(frame_type) else "unknown"
    child = _in_children.get(label)
    if child is None:
        child = _in_children[label] = FRAMES_IN.labels(label)
    child.inc()


def frame_out_text(text: str) -> None:
    """Count one frame sent; the server writes ``{"type": ...`` first (json.dumps order)."""
    match = _TYPE_PREFIX.match(text)
    label = match[1] if match else "other"
    child = _out_children.get(label)
    if child is None:
        child = _out_children[label] = FRAMES_OUT.labels(label)
    child.inc()


def socket_opened() -> None:
    SOCKETS_OPEN.inc()


def socket_closed() -> None:
    SOCKETS_OPEN.dec()


def chat_send_timer() -> Callable[[Any], None]:
    """A done-callback for a send's future: observes queued-to-committed on success."""
    started = time.monotonic()

    def done(future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            CHAT_COMMIT_FAILED.inc()
        else:
            CHAT_COMMIT.observe(time.monotonic() - started)

    return done


def chat_synced(*, messages: int) -> None:
    GAP_MESSAGES.inc(messages)
    if messages:
        GAPS_REPAIRED.inc()


def signal(frame_type: str, outcome: str) -> None:
    SIGNALS.labels(frame_type, outcome).inc()


def delivery_outcome(*, kind: str, outcome: str) -> None:
    DELIVERIES.labels(kind, outcome).inc()


def dead_letter_written(*, kind: str) -> None:
    DEAD_LETTERS_WRITTEN.labels(kind).inc()


def call_stats_samples(outcome: str, n: int = 1) -> None:
    CALL_STATS_SAMPLES.labels(outcome).inc(n)


def store_error(store: str, exc: BaseException) -> None:
    """Count ``exc`` once (it may pass several places that report it)."""
    if getattr(exc, "_huddle_counted", False):
        return
    try:
        exc._huddle_counted = True  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass
    STORE_ERRORS.labels(store, type(exc).__name__).inc()


class SocketMetrics:
    """ASGI middleware on the WebSocket route: sockets open and frames sent by type.

    At the edge rather than in the consumer, so every frame counts whoever sends it
    (the consumer, the chat fan-out writing pre-encoded text to its local sockets).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        accepted = False

        async def counted_send(message: Any) -> None:
            nonlocal accepted
            kind = message.get("type")
            if kind == "websocket.send" and message.get("text") is not None:
                frame_out_text(message["text"])
            await send(message)
            if kind == "websocket.accept" and not accepted:
                accepted = True
                socket_opened()

        try:
            await self.app(scope, receive, counted_send)
        finally:
            if accepted:
                socket_closed()
