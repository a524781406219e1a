"""The MongoDB dead-letter collection, in plain pymongo: djongo's last release pins
Django <= 3.1 and pymongo <= 3.11, and django-mongodb-backend cannot update
documents on the local nx-27017 server.

One document per delivery that exhausted its retries, keyed by the delivery id:

    {_id, kind, target, payload, status: dead|replayed|discarded,
     attempts: [{n, at, error, status_code?, duration_ms?}], attempt_count,
     last_error, created_at, dead_at, expire_at, replays, history, rev}

Kept to the subset the local nx-27017 server and real MongoDB treat alike:
string ``_id``s, datetimes written only by insert/replace (never ``$set``),
no pipeline updates. Changes are compare-and-swap ``replace_one`` on ``rev``,
so two moderators replaying at once replay once.

When MongoDB is unreachable a dead letter goes to a Redis list (the spool) and
is written by ``spool_flush`` once MongoDB answers again: never lost, never
duplicated (the key). One flusher drains the whole spool: a Redis flag, set
atomically with the push, says one is pending or running, so an outage costs
one retrying task however many letters pile up (each try holds a worker for
the server-selection timeout). An rq cron job restarts the flusher if it was
lost with its worker.
"""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from videochat.mongo import indexed_collection

from . import enqueue
from .connections import sync_redis

log = structlog.get_logger(__name__)

COLLECTION = "deadletters"
SPOOL_KEY = "deadletters:spool"
# Holds the token of the one flusher that is pending or running.
FLUSHER_KEY = "deadletters:spool:flusher"
# How long a running flusher owns the spool without renewing: if its worker
# dies, the flag expires and the next spooled letter or the cron job starts another.
FLUSHER_LEASE_S = 120
STATUSES = ("dead", "replayed", "discarded")
KINDS = ("webhook", "email")


def collection() -> Collection:
    return indexed_collection(COLLECTION, indexes_ensure)


def indexes_ensure(col: Collection) -> None:
    # Retention: each document carries its own expiry, so a changed
    # DEADLETTER_TTL_DAYS applies to new dead letters without collMod; the
    # prune command applies it to old ones.
    col.create_index("expire_at", expireAfterSeconds=0, name="dl_expire_at")
    col.create_index([("status", ASCENDING), ("dead_at", DESCENDING)], name="dl_status_dead_at")
    col.create_index([("kind", ASCENDING), ("dead_at", DESCENDING)], name="dl_kind_dead_at")
    col.create_index("target", name="dl_target")


def now() -> datetime:
    # Millisecond precision: what BSON stores, so values read back compare equal.
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _parse_dt(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _history(action: str, by: str, **extra: Any) -> dict[str, Any]:
    return {"action": action, "at": now(), "by": by, **extra}


def deadletter_build(
    *,
    delivery_id: str,
    kind: str,
    target: str,
    payload: dict[str, Any],
    attempts: list[dict[str, Any]],
    created_at: datetime | None = None,
    last_error: str | None = None,
) -> dict[str, Any]:
    """A dead-letter document (datetimes may be ISO strings; fixed when written).

    ``last_error`` overrides the last attempt's error, for a delivery that died
    without a call (it waited too long for an open breaker).
    """
    dead_at = now()
    return {
        "_id": delivery_id,
        "kind": kind,
        "target": target,
        "payload": payload,
        "status": "dead",
        "attempts": attempts,
        "attempt_count": len(attempts),
        "last_error": last_error or (attempts[-1].get("error") if attempts else None),
        "created_at": created_at or (attempts[0]["at"] if attempts else dead_at),
        "dead_at": dead_at,
        "expire_at": dead_at + timedelta(days=settings.DEADLETTER_TTL_DAYS),
    }


def _normalise(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    for field in ("created_at", "dead_at", "expire_at"):
        doc[field] = _parse_dt(doc.get(field))
    doc["attempts"] = [{**a, "at": _parse_dt(a.get("at"))} for a in doc.get("attempts", [])]
    return doc


def deadletter_write(*, doc: dict[str, Any]) -> None:
    """Insert or refresh the one document for this delivery (idempotent).

    A delivery replayed and dead again keeps its replay count and history.
    Raises PyMongoError when MongoDB is unreachable.
    """
    col = collection()
    doc = _normalise(doc)
    for _ in range(5):
        old = col.find_one({"_id": doc["_id"]})
        if old is None:
            new = {**doc, "replays": 0, "history": [_history("dead", "worker")], "rev": 1}
            try:
                col.insert_one(new)
                return
            except PyMongoError as exc:
                if "duplicate key" not in str(exc).lower() and "E11000" not in str(exc):
                    raise
                continue
        if old.get("status") == "dead" and old.get("attempt_count") == doc["attempt_count"]:
            return  # the same dead letter written twice (spool flush after a crash)
        new = {
            **doc,
            "created_at": old.get("created_at", doc["created_at"]),
            "replays": old.get("replays", 0),
            "history": [*old.get("history", []), _history("dead", "worker")],
            "rev": old.get("rev", 0) + 1,
        }
        if col.replace_one({"_id": doc["_id"], "rev": old.get("rev")}, new).matched_count:
            return
    raise RuntimeError(f"dead letter {doc['_id']} kept changing under us")


# KEYS: spool, flusher flag. ARGV: document JSON, flusher token, flag ttl ms,
# "1" to push only onto a spool that is not empty. Returns -1 (not pushed), 1
# (pushed, and this caller must start the flusher: the flag is its token) or 0
# (pushed; a flusher is already pending or running).
_SPOOL_PUSH = """
if ARGV[4] == '1' and redis.call('LLEN', KEYS[1]) == 0 then return -1 end
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) then return 1 end
return 0
"""

# KEYS: spool, flusher flag. ARGV: token. 1: the spool is empty and the flag
# is no longer ours (released here, atomically with the emptiness check, so a
# letter pushed meanwhile either is seen here or starts a new flusher).
_FLUSHER_RELEASE = """
if redis.call('LLEN', KEYS[1]) > 0 then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

# KEYS: flusher flag. ARGV: token. Compare-and-delete.
_FLUSHER_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: flusher flag. ARGV: token, ttl ms. 1 if the flag is this flusher's.
_FLUSHER_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


def _spool_push(*, raw: str, only_if_spooling: bool) -> int:
    token = uuid.uuid4().hex
    countdown = settings.DELIVERY_RETRY_BASE_S
    pushed = int(
        sync_redis().eval(
            _SPOOL_PUSH,
            2,
            SPOOL_KEY,
            FLUSHER_KEY,
            raw,
            token,
            int((countdown + FLUSHER_LEASE_S) * 1000),
            "1" if only_if_spooling else "0",
        )
    )
    if pushed == 1:
        spool_flusher_start(token=token, countdown=countdown)
    return pushed


def deadletter_record(*, doc: dict[str, Any]) -> str:
    """Write the dead letter, or spool it in Redis if MongoDB is down.

    Returns "written" or "spooled". While the spool holds letters MongoDB is
    not tried (it was down a moment ago): the letter joins the queue at once,
    behind the older ones, instead of holding the worker for the timeout.
    """
    raw = json.dumps(doc, default=_json_default)
    if _spool_push(raw=raw, only_if_spooling=True) >= 0:
        return "spooled"
    try:
        deadletter_write(doc=doc)
        return "written"
    except PyMongoError as exc:
        log.warning("deadletter.spooled", delivery=doc["_id"], error=str(exc)[:200])
        _spool_push(raw=raw, only_if_spooling=False)
        return "spooled"


def spool_flusher_start(*, token: str, countdown: float) -> None:
    """Queue the flusher that owns ``token``; on failure free the flag for the next one."""
    try:
        enqueue.task_send(
            enqueue.DEADLETTER_SPOOL_FLUSH, kwargs={"token": token}, countdown=countdown
        )
    except Exception:
        log.exception("deadletter.flusher_enqueue_failed")
        spool_flusher_release(token=token, force=True)


def spool_flusher_renew(*, token: str, ttl_s: float) -> bool:
    """Extend the flag if it is still ``token``'s; False: another flusher owns the spool."""
    return bool(sync_redis().eval(_FLUSHER_RENEW, 1, FLUSHER_KEY, token, int(ttl_s * 1000)))


def spool_flusher_release(*, token: str, force: bool = False) -> bool:
    """Give up the flag if the spool is empty (or ``force``); False: more to flush."""
    r = sync_redis()
    if force:
        return bool(r.eval(_FLUSHER_DROP, 1, FLUSHER_KEY, token))
    return bool(r.eval(_FLUSHER_RELEASE, 2, SPOOL_KEY, FLUSHER_KEY, token))


def spool_flusher_claim() -> str | None:
    """Take the flag for a new flusher; its token, or None if one is pending or running."""
    token = uuid.uuid4().hex
    if sync_redis().set(FLUSHER_KEY, token, nx=True, px=FLUSHER_LEASE_S * 1000):
        return token
    return None


def spool_flusher_ensure() -> str:
    """Start a flusher if letters are spooled and none is pending or running.

    The backstop for a flusher lost with its worker. Returns "started",
    "running" or "idle" (nothing spooled).
    """
    if not spool_length():
        return "idle"
    token = spool_flusher_claim()
    if token is None:
        return "running"
    spool_flusher_start(token=token, countdown=0)
    return "started"


def spool_drain(*, token: str) -> int:
    """Flush until the spool is empty, then release the flag; returns how many.

    Raises PyMongoError while MongoDB is down (the flag stays: the caller
    retries). Stops early if the flag was lost to another flusher.
    """
    written = 0
    while True:
        written += spool_flush()
        if spool_flusher_release(token=token):
            return written
        if not spool_flusher_renew(token=token, ttl_s=FLUSHER_LEASE_S):
            return written


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def spool_length() -> int:
    return int(sync_redis().llen(SPOOL_KEY))


def spool_flush(*, limit: int = 1000) -> int:
    """Write spooled dead letters to MongoDB, oldest first; returns how many.

    Raises PyMongoError if MongoDB is still down (the caller retries). The
    entry leaves the spool only after its write, and writing twice is harmless.
    """
    r = sync_redis()
    written = 0
    while written < limit:
        raw = r.lindex(SPOOL_KEY, 0)
        if raw is None:
            break
        raw = str(raw)
        deadletter_write(doc=json.loads(raw))
        r.lrem(SPOOL_KEY, 1, raw)
        written += 1
    return written


# --- reads ------------------------------------------------------------------


def deadletter_get(*, delivery_id: str) -> dict[str, Any] | None:
    return collection().find_one({"_id": delivery_id})


def deadletter_query(
    *,
    kind: str | None = None,
    status: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if kind:
        query["kind"] = kind
    if status:
        query["status"] = status
    if target:
        query["target"] = {"$regex": re.escape(target), "$options": "i"}
    if since or until:
        query["dead_at"] = {}
        if since:
            query["dead_at"]["$gte"] = since
        if until:
            query["dead_at"]["$lt"] = until
    if search:
        pattern = {"$regex": re.escape(search), "$options": "i"}
        query["$or"] = [{"_id": pattern}, {"target": pattern}, {"last_error": pattern}]
    return query


class PageOutOfRange(ValueError):
    pass


def deadletter_list(
    *, query: dict[str, Any], offset: int = 0, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """One page of dead letters, newest first, and how many match.

    Raises PageOutOfRange for an offset past the last match (the first page
    of nothing is fine): a huge one would not even fit MongoDB's skip.
    """
    col = collection()
    total = col.count_documents(query)
    if offset < 0 or (offset and offset >= total):
        raise PageOutOfRange(f"offset {offset} is past the {total} dead letters")
    docs = list(col.find(query).sort("dead_at", DESCENDING).skip(offset).limit(limit))
    return docs, total


def deadletter_targets(*, limit: int = 50) -> list[str]:
    return sorted(str(t) for t in collection().distinct("target"))[:limit]


def deadletter_counts() -> dict[str, int]:
    col = collection()
    return {status: col.count_documents({"status": status}) for status in STATUSES}


# --- moderator changes (compare-and-swap on rev) -----------------------------


def deadletter_transition(
    *, delivery_id: str, from_status: str, to_status: str, by: str
) -> dict[str, Any] | None:
    """Move one dead letter from ``from_status`` to ``to_status``.

    Returns the new document, or None when it is not in ``from_status``
    (already replayed or discarded by someone else, or gone).
    """
    col = collection()
    old = col.find_one({"_id": delivery_id})
    if old is None or old.get("status") != from_status:
        return None
    new = {
        **old,
        "status": to_status,
        "history": [*old.get("history", []), _history(to_status, by)],
        "rev": old.get("rev", 0) + 1,
    }
    if to_status == "replayed":
        new["replays"] = old.get("replays", 0) + 1
        new["replayed_at"] = now()
    result = col.replace_one({"_id": delivery_id, "rev": old.get("rev")}, new)
    return new if result.matched_count == 1 else None


def deadletter_prune(*, older_than: datetime, dry_run: bool) -> int:
    """Delete dead letters that died before ``older_than`` (any status)."""
    query = {"dead_at": {"$lt": older_than}}
    col = collection()
    if dry_run:
        return col.count_documents(query)
    return col.delete_many(query).deleted_count
