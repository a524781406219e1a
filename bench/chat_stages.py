"""Where a chat message's time goes: stage timestamps inside Huddle's daphne.

``bench/chat_fanout.py --trace DIR`` runs Huddle as this ASGI application: the
product's, with a few of its chat functions wrapped to note the time at which each
message passes each stage (CLOCK_MONOTONIC, the clock the load generator stamps its
bodies with, shared by every process of the machine). The load generator writes
the time each client received each message; ``python bench/chat_stages.py DIR``
joins the two and says, for the median delivery and for the slowest 1 %, how long
each stage took:

    ingress   client's send -> the consumer's receive (client, kernel, Twisted, autobahn, daphne)
    charge    receive -> queued for the group commit (frame parse, the Redis charge, handler)
    queued    queued -> its batch's write starts (waiting for the batch before it)
    write     the batch's write in the database thread (including the thread hop)
    publish   the batch's Redis PUBLISH round trip
    pubsub    published -> the fan-out listener has it (Redis, the listener's wake-up)
    fanout    listener has it -> written to this room's last local socket
    egress    the last socket's write -> the client read it (daphne, autobahn, kernel, client)

The wrappers cost a little CPU per message: compare stage shares, not the CPU figure
of a traced run with an untraced one. Measurement only, never the product's path.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_now = time.monotonic_ns


def _key(body: object) -> str | None:
    """The load generator's message key ("c<client>|<n>") from a body."""
    if not isinstance(body, str) or body.count("|") != 2:
        return None
    return body.rsplit("|", 1)[0]


class _Recorder:
    """Stage times in memory, appended to ``TRACE_DIR/server-<pid>.jsonl`` every second.

    Flushed from the event loop rather than at exit: the bench stops daphne with
    SIGTERM and then SIGKILL.
    """

    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / f"server-{os.getpid()}.jsonl"
        self.rows: list[list[Any]] = []
        self.flusher: asyncio.Task | None = None

    def note(self, row: list[Any]) -> None:
        self.rows.append(row)
        if self.flusher is None:
            self.flusher = asyncio.get_running_loop().create_task(self._flush_every_second())

    async def _flush_every_second(self) -> None:
        while True:
            await asyncio.sleep(1)
            rows, self.rows = self.rows, []
            if rows:
                with self.path.open("a") as out:
                    out.writelines(json.dumps(r) + "\n" for r in rows)


def install(directory: str) -> None:
    from redis.asyncio.client import PubSub

    from messaging import fanout, writer
    from rooms.consumers import RoomConsumer

    rec = _Recorder(directory)

    from messaging import services

    create = services.messages_create

    def traced_create(*, items: list[Any]) -> Any:
        # In the database thread: its wall time against its own CPU time.
        w0, c0 = _now(), time.thread_time_ns()
        try:
            return create(items=items)
        finally:
            rec.rows.append(["create", len(items), _now() - w0, time.thread_time_ns() - c0])

    services.messages_create = traced_create

    receive = RoomConsumer.receive

    async def traced_receive(self: Any, text_data: str | None = None, bytes_data: Any = None):
        t = _now()
        if text_data and '"chat.send"' in text_data:
            key = _key(json.loads(text_data).get("body"))
            if key:
                rec.note(["in", key, t])
        return await receive(self, text_data=text_data, bytes_data=bytes_data)

    RoomConsumer.receive = traced_receive

    enqueue = writer._Writer.enqueue

    def traced_enqueue(self: Any, item: Any) -> Any:
        key = _key(item.get("body"))
        if key:
            rec.note(["enq", key, _now()])
        return enqueue(self, item)

    writer._Writer.enqueue = traced_enqueue

    write = writer._Writer.write

    async def traced_write(self: Any, batch: list[Any]) -> Any:
        t0 = _now()
        results = await write(self, batch)
        keys = [k for k in (_key(item.get("body")) for item, _ in batch) if k]
        rec.note(["write", keys, t0, _now()])
        return results

    writer._Writer.write = traced_write

    publish: Callable[..., Any] = fanout.rooms_publish

    async def traced_publish(messages_by_room: Any) -> None:
        t0 = _now()
        await publish(messages_by_room)
        keys = [_key(m.get("body")) for ms in messages_by_room.values() for m in ms]
        rec.note(["publish", [k for k in keys if k], t0, _now()])

    fanout.rooms_publish = traced_publish  # writer calls fanout.rooms_publish

    get_message = PubSub.get_message

    def keys_of(text: str) -> list[str]:
        frame = json.loads(text)
        messages = frame["messages"] if frame.get("type") == "chat.messages" else [frame]
        return [k for k in (_key(m.get("body")) for m in messages) if k]

    async def traced_get_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        message = await get_message(self, *args, **kwargs)
        if message is not None and isinstance(message.get("data"), str):
            t = _now()
            rec.note(["rx", hash(message["data"]), keys_of(message["data"]), t])
        return message

    PubSub.get_message = traced_get_message

    send_text = RoomConsumer._send_text

    async def traced_send_text(self: Any, text: str) -> None:
        await send_text(self, text)
        rec.note(["sent", hash(text), _now()])

    RoomConsumer._send_text = traced_send_text


if os.environ.get("CHAT_TRACE_DIR"):
    from videochat.asgi import application  # noqa: F401  (the product, then wrapped)

    install(os.environ["CHAT_TRACE_DIR"])


STAGES = ["ingress", "charge", "queued", "write", "publish", "pubsub", "fanout", "egress"]


def analyse(directory: Path) -> dict[str, Any]:
    """Per delivery, the time in each stage; for the median delivery's neighbours
    (p45-p55 by latency) and the slowest 1 %, each stage's mean in ms."""
    at: dict[str, dict[str, int]] = {s: {} for s in ("in", "enq", "w0", "w1", "p1", "rx", "sent")}
    text_rx: dict[int, tuple[int, list[str]]] = {}
    text_sent: dict[int, int] = {}
    for path in directory.glob("server-*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            kind = row[0]
            if kind in ("in", "enq"):
                at[kind].setdefault(row[1], row[2])
            elif kind == "write":
                for k in row[1]:
                    at["w0"].setdefault(k, row[2])
                    at["w1"].setdefault(k, row[3])
            elif kind == "publish":
                for k in row[1]:
                    at["p1"].setdefault(k, row[3])
            elif kind == "rx":
                text_rx.setdefault(row[1], (row[3], row[2]))
            elif kind == "sent":
                text_sent[row[1]] = max(text_sent.get(row[1], 0), row[2])
    for h, (t_rx, keys) in text_rx.items():
        for k in keys:
            at["rx"].setdefault(k, t_rx)
            if h in text_sent:
                at["sent"].setdefault(k, text_sent[h])
    order = ["in", "enq", "w0", "w1", "p1", "rx", "sent"]
    rows = []
    missing = 0
    for key, t0, t_recv in json.loads((directory / "clients.json").read_text()):
        marks = [at[s].get(key) for s in order]
        if any(m is None for m in marks):
            missing += 1
            continue
        points = [t0, *marks, t_recv]
        rows.append((t_recv - t0, [b - a for a, b in zip(points, points[1:], strict=False)]))
    rows.sort(key=lambda r: r[0])
    n = len(rows)

    def mean_of(part: list[tuple[int, list[int]]]) -> dict[str, float]:
        if not part:
            return {}
        out = {"total": sum(r[0] for r in part) / len(part) / 1e6}
        for i, stage in enumerate(STAGES):
            out[stage] = sum(r[1][i] for r in part) / len(part) / 1e6
        return {k: round(v, 2) for k, v in out.items()}

    creates = [
        json.loads(line)
        for path in directory.glob("server-*.jsonl")
        for line in path.read_text().splitlines()
        if line.startswith('["create"')
    ]
    creates.sort(key=lambda r: r[2])
    nc = len(creates)
    return {
        "batches": nc,
        "messages per batch, mean": round(sum(r[1] for r in creates) / max(nc, 1), 1),
        "messages_create wall ms p50 / p99": [
            round(creates[int(q * nc)][2] / 1e6, 2) for q in (0.5, 0.99) if nc
        ],
        "messages_create thread CPU ms, mean": round(
            sum(r[3] for r in creates) / max(nc, 1) / 1e6, 2
        ),
        "deliveries": n,
        "without_all_stages": missing,
        "p45-p55": mean_of(rows[int(0.45 * n) : int(0.55 * n)]),
        "slowest 1 %": mean_of(rows[int(0.99 * n) :]),
    }


if __name__ == "__main__":
    print(json.dumps(analyse(Path(sys.argv[1])), indent=2))
