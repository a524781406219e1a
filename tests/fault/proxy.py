"""A userspace TCP fault proxy: forwards to a target port and, on command or at
random, resets connections (RST via SO_LINGER 0) or stalls them (holds bytes in
both directions without closing; the peers see silence, not an error).

Runs on the caller's asyncio loop. When either side closes, both are closed,
so a client that gives up on a stalled socket also frees the server's side.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Conn:
    down_writer: asyncio.StreamWriter
    up_writer: asyncio.StreamWriter
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_port: int, *, seed: int | None = None) -> None:
        self.target_port = target_port
        self.port = 0
        self.conns: set[_Conn] = set()
        self.rng = random.Random(seed)
        self.resets = 0
        self.stalls = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._chaos: asyncio.Task | None = None

    async def start(self, port: int = 0) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.stop_chaos()
        if self._server:
            self._server.close()
        for conn in list(self.conns):
            self._close(conn, reset=True)

    async def _handle(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _rst(down_w)  # target down: the client sees a refused/reset socket
            return
        conn = _Conn(down_writer=down_w, up_writer=up_w)
        conn.flowing.set()
        self.conns.add(conn)
        conn.tasks = [
            asyncio.create_task(self._pump(conn, down_r, up_w)),
            asyncio.create_task(self._pump(conn, up_r, down_w)),
        ]

    async def _pump(self, conn: _Conn, reader, writer) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await conn.flowing.wait()  # a stall holds the bytes here
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._close(conn, reset=False)

    def _close(self, conn: _Conn, *, reset: bool) -> None:
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        for w in (conn.down_writer, conn.up_writer):
            if reset:
                _rst(w)
            else:
                w.close()
        for task in conn.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    # --- faults -------------------------------------------------------------
    def reset_one(self) -> bool:
        if not self.conns:
            return False
        self._close(self.rng.choice(sorted(self.conns, key=id)), reset=True)
        self.resets += 1
        return True

    def reset_all(self) -> None:
        for conn in list(self.conns):
            self._close(conn, reset=True)
            self.resets += 1

    def stall_one(self, seconds: float) -> bool:
        if not self.conns:
            return False
        conn = self.rng.choice(sorted(self.conns, key=id))
        conn.flowing.clear()
        asyncio.get_running_loop().call_later(seconds, conn.flowing.set)
        self.stalls += 1
        return True

    def start_chaos(self, *, every_s: float = 0.25, reset_share: float = 0.5) -> None:
        """At random intervals (mean every_s), reset or stall a random connection."""

        async def chaos() -> None:
            while True:
                await asyncio.sleep(self.rng.expovariate(1 / every_s))
                if self.rng.random() < reset_share:
                    self.reset_one()
                else:
                    self.stall_one(self.rng.uniform(0.5, 3.0))

        self._chaos = asyncio.create_task(chaos())

    def stop_chaos(self) -> None:
        if self._chaos:
            self._chaos.cancel()
            self._chaos = None
        for conn in self.conns:
            conn.flowing.set()
