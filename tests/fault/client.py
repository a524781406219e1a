"""A chat client that speaks the room protocol like the browser does (outbox,
resend by client_id, resume by seq, gap backfill) and logs what it observes.

Its log is what the contract is checked against: the order in which this
client saw each seq released, and every ack it received.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

PROTOCOL_VERSION = 1
RESEND_S = 1.0
SYNC_EVERY_S = 1.0


@dataclass
class Observed:
    seq: int
    client_id: str | None  # None: a hidden slot
    author_id: int | None


@dataclass
class ChatClient:
    name: str
    url: str
    cookie: str
    origin: str
    room: str = ""
    to_send: int = 20
    send_every_s: float = 0.1
    log: list[Observed] = field(default_factory=list)
    acks: dict[str, list[int]] = field(default_factory=dict)  # every ack seen, per client_id
    errors: list[dict] = field(default_factory=list)
    connects: int = 0
    live_at: list[float] = field(default_factory=list)  # monotonic times of chat.message
    welcomed_at: list[float] = field(default_factory=list)  # monotonic times of each welcome
    dropped_at: list[float] = field(default_factory=list)  # ... and of each welcomed socket's end
    # When the socket now held (welcomed, not yet known dead) was opened: a socket opened
    # after a server's death was accepted by its successor, whatever the clocks say.
    held_opened_at: float | None = None
    # For load reports (bench/load_recovery.py): first send and first ack of each of ours,
    # and (time, client_id) of each message released in order to this client.
    sent_at: dict[str, float] = field(default_factory=dict)
    acked_at: dict[str, float] = field(default_factory=dict)
    released: list[tuple[float, str | None]] = field(default_factory=list)
    close_codes: list[int] = field(default_factory=list)  # codes the server closed us with
    leaves: list[dict] = field(default_factory=list)  # presence.leave frames seen
    last_seq: int = 0
    _pending: dict[int, dict] = field(default_factory=dict)
    _unacked: dict[str, str] = field(default_factory=dict)
    _ws: object = None
    _stop: bool = False
    _sync_inflight: bool = False
    _resume: dict | None = None
    # No frame sent and no socket opened before this (monotonic): the server's last
    # rate_limited said retry_after (docs/protocol.md, Errors).
    _quiet_until: float = 0.0

    # --- what the harness reads -------------------------------------------
    @property
    def sent_ids(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.to_send)]

    @property
    def all_acked(self) -> bool:
        return not self._unacked and all(cid in self.acks for cid in self.sent_ids)

    # --- life cycle -------------------------------------------------------
    async def run(self) -> None:
        sender = asyncio.create_task(self._sender())
        resender = asyncio.create_task(self._resender())
        try:
            while not self._stop:
                welcomes = len(self.welcomed_at)
                try:
                    await self._session()
                except ConnectionClosed as exc:
                    if exc.rcvd is not None:
                        self.close_codes.append(exc.rcvd.code)
                except (OSError, WebSocketException, TimeoutError):
                    pass
                if len(self.welcomed_at) > welcomes and not self._stop:
                    self.dropped_at.append(time.monotonic())
                self._ws = None
                self.held_opened_at = None
                if not self._stop:
                    # Sooner than a browser (no growing backoff), never sooner than told.
                    quiet = self._quiet_until - time.monotonic()
                    await asyncio.sleep(max(random.uniform(0.05, 0.4), quiet))
        finally:
            sender.cancel()
            resender.cancel()

    def stop(self) -> None:
        self._stop = True
        ws = self._ws
        if ws is not None:
            asyncio.ensure_future(ws.close())

    async def _session(self) -> None:
        async with connect(
            self.url,
            origin=self.origin,
            additional_headers={"Cookie": f"sessionid={self.cookie}"},
            open_timeout=3,
            ping_interval=0.5,
            # A stalled socket is given up quickly, as a browser heartbeat would.
            ping_timeout=1.5,
            close_timeout=0.5,
        ) as ws:
            opened_at = time.monotonic()
            hello: dict = {"type": "hello", "v": PROTOCOL_VERSION}
            if self._resume:
                # As the browser does: reclaim our seat, so the stale presence of a
                # killed server's socket does not count against the room's capacity.
                hello["resume"] = self._resume
            await ws.send(json.dumps(hello))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if welcome.get("type") != "welcome":
                self.errors.append(welcome)
                self._told_to_wait(welcome)  # rate_limited, then 4429
                return
            token = (welcome.get("resume") or {}).get("token")
            self._resume = {"peer_id": welcome["peer_id"], "token": token} if token else None
            self.connects += 1
            self.welcomed_at.append(time.monotonic())
            self._ws = ws
            self.held_opened_at = opened_at
            self._sync_inflight = False
            await self._sync()
            await self._resend_all()
            async for raw in ws:
                await self._handle(json.loads(raw))
                if self._stop:
                    return

    def _told_to_wait(self, error: dict) -> None:
        if error.get("code") == "rate_limited":
            until = time.monotonic() + float(error.get("retry_after") or 0)
            self._quiet_until = max(self._quiet_until, until)

    async def _send(self, frame: dict) -> bool:
        if (quiet := self._quiet_until - time.monotonic()) > 0:
            await asyncio.sleep(quiet)
        ws = self._ws
        if ws is None:
            return False
        try:
            await asyncio.wait_for(ws.send(json.dumps(frame)), 2)
            return True
        except (OSError, WebSocketException, TimeoutError):
            return False

    async def _sender(self) -> None:
        for cid in self.sent_ids:
            self._unacked[cid] = f"message {cid}"
            self.sent_at[cid] = time.monotonic()
            await self._send(
                {"type": "chat.send", "client_id": cid, "body": self._unacked[cid], "ref": cid}
            )
            await asyncio.sleep(random.uniform(0.5, 1.5) * self.send_every_s)

    async def _resend_all(self) -> None:
        for cid, body in list(self._unacked.items()):
            await self._send({"type": "chat.send", "client_id": cid, "body": body, "ref": cid})

    async def _resender(self) -> None:
        while True:
            await asyncio.sleep(RESEND_S)
            await self._resend_all()
            # A lost wake-up with nothing after it is repaired by a periodic sync.
            self._sync_inflight = False
            await self._sync()

    async def _sync(self) -> None:
        if not self._sync_inflight:
            self._sync_inflight = await self._send(
                {"type": "chat.sync", "after_seq": self.last_seq}
            )

    # --- frames -----------------------------------------------------------
    async def _handle(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "chat.ack":
            self.acks.setdefault(frame["client_id"], []).append(frame["seq"])
            self.acked_at.setdefault(frame["client_id"], time.monotonic())
            self._unacked.pop(frame["client_id"], None)
            if frame["seq"] > self.last_seq:
                await self._sync()  # its wake-up may be lost: backfill
        elif kind in ("chat.message", "chat.messages"):
            self.live_at.append(time.monotonic())
            if await self._receive(frame["messages"] if kind == "chat.messages" else [frame]):
                await self._sync()
        elif kind == "chat.batch":
            self._sync_inflight = False
            gap = await self._receive(frame["messages"])
            if frame["has_more"] or gap:
                await self._sync()
        elif kind == "error":
            self.errors.append(frame)
            self._told_to_wait(frame)
        elif kind == "presence.leave":
            self.leaves.append(frame)

    async def _receive(self, messages: list[dict]) -> bool:
        """Hold by seq, release in order; True when a hole remains."""
        for m in messages:
            if m["seq"] > self.last_seq:
                self._pending.setdefault(m["seq"], m)
        while self.last_seq + 1 in self._pending:
            m = self._pending.pop(self.last_seq + 1)
            self.last_seq += 1
            self.log.append(Observed(m["seq"], m.get("client_id"), m.get("author_id")))
            self.released.append((time.monotonic(), m.get("client_id")))
        return bool(self._pending)


def room_heads(clients: list[ChatClient]) -> dict[str, int]:
    """The highest acknowledged seq of each room, as its clients saw the acks."""
    heads: dict[str, int] = {}
    for c in clients:
        for seqs in c.acks.values():
            heads[c.room] = max(heads.get(c.room, 0), *seqs)
    return heads


async def stop_clients(clients: list[ChatClient], tasks: list[asyncio.Task]) -> None:
    for c in clients:
        c.stop()
    await asyncio.wait(tasks, timeout=5)
    for t in tasks:
        t.cancel()
