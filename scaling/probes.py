"""What one node can measure about itself, and what shared Redis says about all.

Nothing here touches the socket layer: sockets are counted from the kernel's table
of established TCP connections to WEB_PORT (what daphne serves), peers from the
presence hashes (rooms/presence.py), deliveries from the hourly counters the
delivery pipeline keeps (``dlv:stats:<YYYYMMDDHH>``, deliveries/pipeline.py).
"""

import os
from datetime import datetime
from typing import Any, TypedDict

import psutil

from deliveries.connections import sync_redis
from rooms.presence import presence_counts_sync, presence_states_sync

# Attempt outcomes counted per hour by deliveries/pipeline.py (``dead`` is a verdict
# on an attempt already counted as failed, so not an attempt of its own).
_ATTEMPT_OUTCOMES = (":delivered", ":failed_attempt")


class ClusterLoad(TypedDict):
    present: int
    in_call: int
    rooms: int


def node_sockets(*, port: int) -> int:
    """Established TCP connections whose local port is ``port`` on this host."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:  # e.g. macOS without root; Linux reads /proc/net
        return 0
    return sum(
        1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
    )


def cpu_counters() -> tuple[float, float]:
    """Cumulative (busy, total) CPU seconds of the host, all cores."""
    times = psutil.cpu_times()
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def load_per_core() -> float:
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def cluster_presence() -> ClusterLoad:
    """Peers in presence (sockets past the hello, in grace included) and in calls."""
    r = sync_redis()
    present = in_call = rooms = 0
    for room_id in presence_counts_sync(client=r):
        states = presence_states_sync(client=r, room_id=room_id)
        if not states:  # left since the count
            continue
        rooms += 1
        present += len(states)
        in_call += sum(1 for s in states if s.get("in_call"))
    return {"present": present, "in_call": in_call, "rooms": rooms}


def delivery_attempts(*, hour: str) -> int:
    """Delivery attempts counted so far in ``hour`` (YYYYMMDDHH, UTC)."""
    counts = sync_redis().hgetall(f"dlv:stats:{hour}")
    return sum(int(v) for k, v in counts.items() if str(k).endswith(_ATTEMPT_OUTCOMES))


def delivery_rate(*, now: datetime, previous: dict[str, Any] | None) -> tuple[str, int, float]:
    """This hour's key and count, and attempts per second since ``previous``'s."""
    hour = f"{now:%Y%m%d%H}"
    count = delivery_attempts(hour=hour)
    if not previous or "dlv_hour" not in previous:
        return hour, count, 0.0
    elapsed = (now - previous["minute"]).total_seconds()
    if elapsed <= 0 or elapsed > 3600:
        return hour, count, 0.0
    if previous["dlv_hour"] == hour:
        done = count - previous["dlv_count"]
    else:
        # The hour rolled over: the rest of the previous hour plus this one so far.
        rest = delivery_attempts(hour=previous["dlv_hour"]) - previous["dlv_count"]
        done = rest + count
    return hour, count, max(0.0, done / elapsed)
