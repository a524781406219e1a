"""The MongoDB collection ``load_samples``: one document per node per minute.

    {_id: "<node>:<YYYYmmddHHMM>", node, minute, expire_at, sockets, cpu,
     cpu_busy_s, cpu_total_s, load1, present, in_call, rooms,
     deliveries_per_s, dlv_hour, dlv_count}

``sockets``, ``cpu`` and ``load1`` are the node's own; ``present``, ``in_call``,
``rooms`` and ``deliveries_per_s`` are the whole cluster's (read from shared Redis),
the same in every node's document of a minute. Kept to the portable subset the
local nx-27017 server and real MongoDB agree on (like deliveries/deadletters.py):
string ``_id``s, datetimes written only by insert/replace, so writing a minute twice
replaces it. A TTL index on ``expire_at`` keeps SCALING_SAMPLE_TTL_DAYS of history.
"""

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection

from videochat.mongo import indexed_collection

from . import conf

COLLECTION = "load_samples"


def collection() -> Collection:
    return indexed_collection(COLLECTION, indexes_ensure)


def indexes_ensure(col: Collection) -> None:
    col.create_index("expire_at", expireAfterSeconds=0, name="ls_expire_at")
    col.create_index([("minute", ASCENDING)], name="ls_minute")
    col.create_index([("node", ASCENDING), ("minute", DESCENDING)], name="ls_node_minute")


def sample_id(*, node: str, minute: datetime) -> str:
    return f"{node}:{minute:%Y%m%d%H%M}"


def sample_write(*, doc: dict[str, Any]) -> None:
    """Insert or replace the node's document for that minute (idempotent)."""
    minute: datetime = doc["minute"]
    doc = {
        **doc,
        "_id": sample_id(node=doc["node"], minute=minute),
        "expire_at": minute + timedelta(days=conf.sample_ttl_days()),
    }
    collection().replace_one({"_id": doc["_id"]}, doc, upsert=True)


def sample_latest(*, node: str, before: datetime) -> dict[str, Any] | None:
    return collection().find_one(
        {"node": node, "minute": {"$lt": before}}, sort=[("minute", DESCENDING)]
    )


def samples_since(*, since: datetime) -> list[dict[str, Any]]:
    return list(collection().find({"minute": {"$gte": since}}).sort("minute", ASCENDING))
