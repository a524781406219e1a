"""Run many chat clients while faults are injected, then let them settle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .client import ChatClient


async def run_clients(
    clients: list[ChatClient],
    faults: Callable[[], Awaitable[None]],
    *,
    settle_s: float = 30,
) -> float:
    """Start the clients, run ``faults`` (returns when the faults are over),
    then wait until every message is acknowledged and every client holds the
    head of its room. Returns the seconds taken."""
    started = time.monotonic()
    tasks = [asyncio.create_task(c.run()) for c in clients]
    try:
        await faults()
        deadline = time.monotonic() + settle_s
        while not all(c.all_acked for c in clients):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        heads: dict[str, int] = {}
        for c in clients:
            for seqs in c.acks.values():
                heads[c.room] = max(heads.get(c.room, 0), *seqs)
        while any(c.last_seq < heads.get(c.room, 0) for c in clients):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        for c in clients:
            c.stop()
        await asyncio.wait(tasks, timeout=5)
        for t in tasks:
            t.cancel()
    return time.monotonic() - started


def by_room(clients: list[ChatClient]) -> dict[str, list[ChatClient]]:
    rooms: dict[str, list[ChatClient]] = {}
    for c in clients:
        rooms.setdefault(c.room, []).append(c)
    return rooms
