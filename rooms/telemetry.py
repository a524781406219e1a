"""Call-quality telemetry: the ``call.stats`` samples, checked, and the MongoDB
collection ``call_stats`` that keeps them.

Each client in a call sends one frame every 2 s holding one SAMPLE per remote
peer (docs/protocol.md, "Call telemetry"; built by static/js/stats-sample.js).
Each accepted sample becomes one document:

    {room: <slug>, call: <call id>, from_peer, to_peer, at: <server datetime>,
     expire_at, t, rtt, loss_in, loss_out, jitter, bw_out, send_kbps, recv_kbps,
     qlr, fps_in, decoded, dropped, freezes, freeze_ms, conceal, relay, level,
     pred, events}

A write never holds the socket: the handler puts the documents on a bounded
in-process queue and returns; one writer thread per process drains it in
batches (``insert_many``). When MongoDB is slow or down the batch fails after
the client's 2 s server-selection timeout and is counted, and while the queue
is full new samples are dropped and counted (telemetry is a record of quality,
not a contract like chat: losing some in an outage is the price of never
slowing a call). ``huddle_call_stats_samples_total{outcome}`` on /metrics says
how many were stored, failed, dropped, refused or about a peer not in the call.

The call id: the room's current call is a Redis key (``rooms.keys.call_key``)
holding an id minted from the time the first sample of the call arrived; it
lives while samples keep coming and is deleted when the call ends (nobody left
in it, rooms.calls), so the next call gets a new id.

Kept to the portable subset nx-27017 and real MongoDB agree on (datetimes
written by insert only). A TTL index on ``expire_at`` keeps CALL_STATS_TTL_DAYS.
"""

import math
import os
import queue
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import structlog
from django.conf import settings
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from videochat import metrics
from videochat.errors import AppError, NotInCall
from videochat.mongo import indexed_collection
from videochat.redis import get_redis

from . import keys, presence

log = structlog.get_logger(__name__)

COLLECTION = "call_stats"
MAX_SAMPLES = 16
MAX_EVENTS = 8
# A frame of 16 samples with every field and 8 events of 64 characters each
# is about 11,000 characters; rooms.security.MAX_FRAME_CHARS holds this limit.
MAX_FRAME_CHARS = 16384
# One frame per socket per RATE_INTERVAL_S on average, RATE_BURST in a row:
# the client sends every 2 s, and a late timer tick followed by an on-time one
# must not be refused.
RATE_INTERVAL_S = 1.5
RATE_BURST = 2
# Samples waiting for the writer thread, per process; beyond this they are dropped.
QUEUE_MAX_SAMPLES = 20_000
BATCH_MAX = 500
# A call with no sample for this long is over even if nobody said so.
CALL_IDLE_S = 120

EVENT_RE = re.compile(r"^[A-Za-z0-9_.:+\-]{1,64}$")
QLR = ("none", "cpu", "bandwidth", "other")
LEVELS = ("full", "reduced", "low", "audio")

# Number fields: (lowest, highest, integer). None is always allowed ("unknown").
NUMBERS: dict[str, tuple[float, float, bool]] = {
    "rtt": (0, 60_000, False),
    "loss_in": (0, 1, False),
    "loss_out": (0, 1, False),
    "jitter": (0, 60_000, False),
    "bw_out": (0, 10_000_000, False),
    "send_kbps": (0, 10_000_000, False),
    "recv_kbps": (0, 10_000_000, False),
    "fps_in": (0, 1000, False),
    "decoded": (0, 1_000_000, True),
    "dropped": (0, 1_000_000, True),
    "freezes": (0, 10_000, True),
    "freeze_ms": (0, 3_600_000, False),
    "conceal": (0, 1, False),
    "pred": (0, 1, False),
}
CHOICES: dict[str, tuple[str, ...]] = {"qlr": QLR, "level": LEVELS}
# Every field a stored sample has (besides peer and t), in document order.
FIELDS = (*NUMBERS, *CHOICES, "relay", "events")


class BadStats(AppError):
    code = "bad_stats"
    message = "The call.stats frame is malformed."


class StatsPeerUnknown(AppError):
    code = "stats_peer_unknown"
    message = "Samples about peers that are not in the call were dropped."


def _number(name: str, value: Any, *, index: int) -> float | int | None:
    if value is None:
        return None
    lo, hi, integer = NUMBERS[name]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and not math.isfinite(value):
        ok = False
    if ok and integer and value != int(value):
        ok = False
    if not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise BadStats(
            f"samples[{index}].{name} must be {kind} in [{lo}, {hi}] or null.",
            index=index,
            field=name,
        )
    return int(value) if integer else float(value)


def sample_parse(raw: Any, *, index: int) -> dict[str, Any]:
    """One sample, checked and normalised (absent fields are null); raises BadStats.

    Unknown keys are ignored (a newer client may send more).
    """

    def bad(field: str, what: str) -> BadStats:
        return BadStats(f"samples[{index}].{field} {what}.", index=index, field=field)

    if not isinstance(raw, dict):
        raise BadStats(f"samples[{index}] must be an object.", index=index, field=None)
    peer = raw.get("peer")
    if not isinstance(peer, str) or not 0 < len(peer) <= 64:
        raise bad("peer", "must be a peer id")
    t = raw.get("t")
    if (
        not isinstance(t, int | float)
        or isinstance(t, bool)
        or not math.isfinite(t)
        or not 0 < t < 1e14
    ):
        raise bad("t", "must be a time in ms since the epoch")
    out: dict[str, Any] = {"peer": peer, "t": int(t)}
    for name in NUMBERS:
        out[name] = _number(name, raw.get(name), index=index)
    for name, allowed in CHOICES.items():
        value = raw.get(name)
        if value is not None and value not in allowed:
            raise bad(name, f"must be one of {', '.join(allowed)} or null")
        out[name] = value
    relay = raw.get("relay")
    if relay is not None and not isinstance(relay, bool):
        raise bad("relay", "must be true, false or null")
    out["relay"] = relay
    events = raw.get("events", [])
    if events is None:
        events = []
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise bad("events", f"must be a list of at most {MAX_EVENTS} strings")
    for event in events:
        if not isinstance(event, str) or not EVENT_RE.match(event):
            raise bad("events", "holds strings of 1-64 letters, digits or _.:+-")
    out["events"] = list(events)
    return out


def samples_parse(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """The frame's samples, checked; raises BadStats for the whole frame (counted)."""
    try:
        return _samples_parse(frame)
    except BadStats:
        samples = frame.get("samples")
        metrics.call_stats_samples("refused", len(samples) if isinstance(samples, list) else 1)
        raise


def _samples_parse(frame: dict[str, Any]) -> list[dict[str, Any]]:
    samples = frame.get("samples")
    if not isinstance(samples, list) or not 0 < len(samples) <= MAX_SAMPLES:
        raise BadStats(
            f"'samples' must be a list of 1 to {MAX_SAMPLES} samples.", index=None, field="samples"
        )
    parsed = [sample_parse(raw, index=i) for i, raw in enumerate(samples)]
    peers = [s["peer"] for s in parsed]
    if len(set(peers)) != len(peers):
        raise BadStats("One sample per peer in a frame.", index=None, field="peer")
    return parsed


class FrameBucket:
    """The per-socket rate of call.stats frames: RATE_BURST, then one per RATE_INTERVAL_S."""

    def __init__(self) -> None:
        self.tokens = float(RATE_BURST)
        self.at = time.monotonic()

    def take(self) -> float:
        """0 when the frame may pass (a token spent); else seconds until it would."""
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.at) / RATE_INTERVAL_S)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) * RATE_INTERVAL_S


# --- the call id ----------------------------------------------------------------

# KEYS[1] the room's call key; ARGV[1] a new id, ARGV[2] its idle lifetime (s).
# The current id (the new one if there was none), its lifetime renewed.
_CALL_ID = """
local v = redis.call('GET', KEYS[1])
if not v then v = ARGV[1] end
redis.call('SET', KEYS[1], v, 'EX', tonumber(ARGV[2]))
return v
"""


def _new_call_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


async def call_current(*, room_id: int) -> str:
    """The id of the room's current call (minted by its first sample)."""
    value = await get_redis().eval(_CALL_ID, 1, keys.call_key(room_id), _new_call_id(), CALL_IDLE_S)
    return str(value)


async def samples_accept(
    *, room_id: int, room_slug: str, from_peer: str, samples: list[dict[str, Any]]
) -> list[str]:
    """Queue the samples about peers in the call with ``from_peer``; returns the
    peer ids of those dropped because their peer is not in the call.

    Raises NotInCall when ``from_peer`` itself is not in the call. Checked per
    frame against presence (shared by every instance): a client may report only
    on its own links to peers of its own room's call.
    """
    in_call = {p["peer_id"] for p in await presence.presence_list(room_id=room_id) if p["in_call"]}
    if from_peer not in in_call:
        metrics.call_stats_samples("refused", len(samples))
        raise NotInCall()
    kept = [s for s in samples if s["peer"] in in_call and s["peer"] != from_peer]
    foreign = [s["peer"] for s in samples if s not in kept]
    if foreign:
        metrics.call_stats_samples("foreign", len(foreign))
    if kept:
        call = await call_current(room_id=room_id)
        samples_record(room=room_slug, call=call, from_peer=from_peer, samples=kept)
    return foreign


# --- the collection ---------------------------------------------------------------


def collection() -> Collection:
    return indexed_collection(COLLECTION, indexes_ensure)


def indexes_ensure(col: Collection) -> None:
    # Each document carries its own expiry: a changed CALL_STATS_TTL_DAYS
    # applies to new samples without collMod.
    col.create_index("expire_at", expireAfterSeconds=0, name="cs_expire_at")
    col.create_index(
        [
            ("room", ASCENDING),
            ("call", ASCENDING),
            ("from_peer", ASCENDING),
            ("to_peer", ASCENDING),
            ("at", ASCENDING),
        ],
        name="cs_room_call_pair_at",
    )
    col.create_index([("room", ASCENDING), ("at", ASCENDING)], name="cs_room_at")


def now() -> datetime:
    # Millisecond precision: what BSON stores, so values read back compare equal.
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def documents_build(
    *, room: str, call: str, from_peer: str, samples: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    at = now()
    expire_at = at + timedelta(days=settings.CALL_STATS_TTL_DAYS)
    docs = []
    for sample in samples:
        doc: dict[str, Any] = {
            "room": room,
            "call": call,
            "from_peer": from_peer,
            "to_peer": sample["peer"],
            "at": at,
            "expire_at": expire_at,
            "t": sample["t"],
        }
        doc.update((name, sample[name]) for name in FIELDS)
        docs.append(doc)
    return docs


class Writer:
    """One thread per process writing queued samples to MongoDB in batches."""

    def __init__(self) -> None:
        self.queue: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        self.queued = 0  # samples waiting (the queue holds lists of them)
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.last_error_log = 0.0

    def put(self, docs: list[dict[str, Any]]) -> bool:
        """Queue ``docs`` for writing; False (and counted) when the queue is full."""
        with self.lock:
            if self.queued + len(docs) > QUEUE_MAX_SAMPLES:
                metrics.call_stats_samples("dropped", len(docs))
                return False
            self.queued += len(docs)
            self._ensure_thread()
        self.queue.put(docs)
        return True

    def _ensure_thread(self) -> None:
        if self.thread is None or not self.thread.is_alive() or self.pid != os.getpid():
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._run, name="call-stats-writer", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            batches = [self.queue.get()]
            size = len(batches[0])
            while size < BATCH_MAX:
                try:
                    batch = self.queue.get_nowait()
                except queue.Empty:
                    break
                batches.append(batch)
                size += len(batch)
            docs = [doc for batch in batches for doc in batch]
            try:
                self._write(docs)
            finally:
                with self.lock:
                    self.queued -= len(docs)
                for _ in batches:
                    self.queue.task_done()

    def _write(self, docs: list[dict[str, Any]]) -> None:
        try:
            collection().insert_many(docs, ordered=False)
        except PyMongoError as exc:
            metrics.store_error("mongo", exc)
            metrics.call_stats_samples("failed", len(docs))
            now = time.monotonic()
            if now - self.last_error_log > 10:  # an outage logs once per 10 s
                self.last_error_log = now
                log.warning("call_stats.write_failed", samples=len(docs), error=str(exc)[:200])
        except Exception:  # noqa: BLE001 - the writer thread must survive anything
            metrics.call_stats_samples("failed", len(docs))
            log.exception("call_stats.write_crashed", samples=len(docs))
        else:
            metrics.call_stats_samples("stored", len(docs))

    def flush(self, *, timeout: float) -> bool:
        """Wait until everything queued so far was written (or failed); tests and commands."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


writer = Writer()


def samples_record(*, room: str, call: str, from_peer: str, samples: list[dict[str, Any]]) -> bool:
    """Queue the samples for MongoDB (never blocks on it); False when dropped."""
    docs = documents_build(room=room, call=call, from_peer=from_peer, samples=samples)
    return writer.put(docs)


# --- reads (the admin, the lab) -------------------------------------------------------


def samples_for(
    *, room: str, call: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The room's stored samples (one call's, or every call's), oldest first, without _id."""
    query: dict[str, Any] = {"room": room}
    if call is not None:
        query["call"] = call
    if since is not None:
        query["at"] = {"$gte": since}
    cursor = collection().find(query, {"_id": 0}).sort([("at", ASCENDING), ("t", ASCENDING)])
    return list(cursor)


class CallSummary(TypedDict):
    call: str
    first_at: datetime
    last_at: datetime
    samples: int
    peers: list[str]


def calls_for(*, room: str, limit: int = 50) -> list[CallSummary]:
    """The room's calls that have samples, newest first."""
    found: dict[str, CallSummary] = {}
    fields = {"_id": 0, "call": 1, "at": 1, "from_peer": 1, "to_peer": 1}
    for doc in collection().find({"room": room}, fields).sort("at", ASCENDING):
        call = str(doc["call"])
        summary = found.get(call)
        if summary is None:
            summary = found[call] = CallSummary(
                call=call, first_at=doc["at"], last_at=doc["at"], samples=0, peers=[]
            )
        summary["last_at"] = doc["at"]
        summary["samples"] += 1
        for peer in (doc["from_peer"], doc["to_peer"]):
            if peer not in summary["peers"]:
                summary["peers"].append(peer)
    return sorted(found.values(), key=lambda c: c["first_at"], reverse=True)[:limit]
