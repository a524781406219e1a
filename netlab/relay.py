"""A UDP impairment relay in front of coturn (the network lab's path).

One ``Relay`` listens on one UDP port for one peer (its browser uses that port
as its TURN server) and forwards to coturn's UDP port, with one upstream socket
per client address, so coturn sees each of the browser's sockets as its own
5-tuple. Each direction (``up``: browser -> coturn, ``down``: coturn ->
browser) applies, in order, an outage (drop everything), Gilbert-Elliott loss,
a bandwidth cap (a token bucket with a bounded queue: a packet that would wait
longer than ``queue_ms`` is tail-dropped, as ``tc tbf`` does) and a delay with
jitter (packets leave in order unless ``reorder`` is set). The impairment can
be replaced while packets flow (``Relay.set``); counters tell what each
direction received, dropped and passed.

The models (``GilbertElliott``, ``TokenBucket``, ``DelayLine``) are pure and
take their clock and random source as arguments: unit-tested without sockets.
``RelayHost`` runs relays on an asyncio loop in a thread of its own, for a
synchronous caller (the lab runner drives Playwright's sync API).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

UP = "up"
DOWN = "down"
DIRECTIONS = (UP, DOWN)


@dataclass(frozen=True)
class Impairment:
    """What one direction of one peer's path does to packets.

    Loss is Gilbert-Elliott: per packet the state moves good -> bad with
    probability ``p`` and bad -> good with ``r``; a packet is lost with
    ``loss_bad`` in the bad state and ``loss_good`` in the good one. ``p=0``
    with ``loss_good=x`` is independent random loss of ``x``. ``rate_kbps``
    caps the bandwidth (None: no cap); ``queue_ms`` bounds the queue behind the
    cap. ``delay_ms`` and ``jitter_ms`` (uniform, +/-) delay each packet.
    ``outage`` drops everything.
    """

    p: float = 0.0
    r: float = 1.0
    loss_bad: float = 1.0
    loss_good: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_kbps: float | None = None
    queue_ms: float = 200.0
    burst_bytes: int = 3000
    outage: bool = False
    reorder: bool = False

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_bad", "loss_good"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.queue_ms <= 0:
            raise ValueError("delay_ms and jitter_ms must be >= 0, queue_ms > 0")
        if self.rate_kbps is not None and self.rate_kbps <= 0:
            raise ValueError(f"rate_kbps must be > 0 or None, got {self.rate_kbps}")

    @property
    def mean_loss(self) -> float:
        """The long-run loss the Gilbert-Elliott chain gives (stationary state)."""
        if self.p == 0.0:
            return self.loss_good
        bad = self.p / (self.p + self.r)
        return bad * self.loss_bad + (1 - bad) * self.loss_good

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CLEAN = Impairment()


def random_loss(fraction: float, **extra: Any) -> Impairment:
    """Independent (Bernoulli) loss of ``fraction``."""
    return Impairment(p=0.0, r=1.0, loss_good=fraction, **extra)


def bursty_loss(mean: float, burst: float, **extra: Any) -> Impairment:
    """Gilbert loss (all lost while bad) with long-run loss ``mean`` and mean burst
    length ``burst`` packets: r = 1/burst, p = r * mean / (1 - mean)."""
    r = 1.0 / burst
    return Impairment(p=r * mean / (1 - mean), r=r, loss_bad=1.0, **extra)


class GilbertElliott:
    """The two-state loss chain of one direction."""

    def __init__(self, model: Impairment) -> None:
        self.model = model
        self.bad = False

    def lose(self, rng: random.Random) -> bool:
        m = self.model
        if self.bad:
            if rng.random() < m.r:
                self.bad = False
        elif m.p > 0 and rng.random() < m.p:
            self.bad = True
        return rng.random() < (m.loss_bad if self.bad else m.loss_good)


class TokenBucket:
    """A rate cap with a bounded FIFO queue.

    ``admit(now, size)`` returns how long the packet waits before it may leave
    (0 while tokens last), or None when that wait would exceed the queue bound
    (tail drop). ``burst_bytes`` worth of tokens may accumulate while idle.
    """

    def __init__(self, rate_kbps: float, *, queue_ms: float = 200.0, burst_bytes: int = 3000):
        self.rate = rate_kbps * 1000 / 8  # bytes per second
        self.queue_s = queue_ms / 1000
        self.burst_s = burst_bytes / self.rate
        self.free_at = 0.0  # when the link has sent everything admitted so far

    def admit(self, now: float, size: int) -> float | None:
        start = max(self.free_at, now - self.burst_s)
        done = start + size / self.rate
        wait = done - now
        if wait > self.queue_s:
            return None
        self.free_at = done
        return max(0.0, wait)


class DelayLine:
    """Delay plus uniform jitter; in order unless ``reorder``."""

    def __init__(self, delay_ms: float, jitter_ms: float, *, reorder: bool = False) -> None:
        self.delay = delay_ms / 1000
        self.jitter = jitter_ms / 1000
        self.reorder = reorder
        self.last = 0.0

    def departure(self, ready_at: float, rng: random.Random) -> float:
        at = ready_at + self.delay
        if self.jitter:
            at += rng.uniform(-self.jitter, self.jitter)
        at = max(at, ready_at)
        if not self.reorder:
            at = max(at, self.last)
            self.last = at
        return at


@dataclass
class Counters:
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0
    dropped_outage: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_loss + self.dropped_queue + self.dropped_outage


@dataclass
class Direction:
    """One direction's impairment and its running state."""

    impairment: Impairment = CLEAN
    counters: Counters = field(default_factory=Counters)
    loss: GilbertElliott = field(init=False)
    bucket: TokenBucket | None = field(init=False)
    line: DelayLine = field(init=False)

    def __post_init__(self) -> None:
        self.apply(self.impairment)

    def apply(self, impairment: Impairment) -> None:
        """A new impairment; the queue's backlog and the loss state start over."""
        self.impairment = impairment
        self.loss = GilbertElliott(impairment)
        self.bucket = (
            TokenBucket(
                impairment.rate_kbps,
                queue_ms=impairment.queue_ms,
                burst_bytes=impairment.burst_bytes,
            )
            if impairment.rate_kbps
            else None
        )
        self.line = DelayLine(impairment.delay_ms, impairment.jitter_ms, reorder=impairment.reorder)

    def schedule(self, now: float, size: int, rng: random.Random) -> float | None:
        """When this packet leaves (an absolute time), or None when it is dropped."""
        c = self.counters
        c.packets_in += 1
        c.bytes_in += size
        if self.impairment.outage:
            c.dropped_outage += 1
            return None
        if self.loss.lose(rng):
            c.dropped_loss += 1
            return None
        ready = now
        if self.bucket is not None:
            wait = self.bucket.admit(now, size)
            if wait is None:
                c.dropped_queue += 1
                return None
            ready = now + wait
        at = self.line.departure(ready, rng)
        c.packets_out += 1
        c.bytes_out += size
        return at


class _Upstream(asyncio.DatagramProtocol):
    """The relay's socket towards coturn for one client address."""

    def __init__(self, relay: Relay, client: tuple[str, int]) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.from_upstream(data, self.client)


class Relay(asyncio.DatagramProtocol):
    """One peer's path: listens on ``port`` and forwards to ``target``."""

    def __init__(self, target: tuple[str, int], *, seed: int | None = None) -> None:
        self.target = target
        self.rng = random.Random(seed)
        self.directions = {UP: Direction(), DOWN: Direction()}
        self.upstreams: dict[tuple[str, int], _Upstream] = {}
        self.pending: dict[tuple[str, int], list[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Relay:
        self.loop = asyncio.get_running_loop()
        await self.loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        assert self.transport is not None
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        for up in self.upstreams.values():
            if up.transport is not None:
                up.transport.close()
        if self.transport is not None:
            self.transport.close()

    def set(self, *, up: Impairment | None = None, down: Impairment | None = None) -> None:
        if up is not None:
            self.directions[UP].apply(up)
        if down is not None:
            self.directions[DOWN].apply(down)

    def counters(self) -> dict[str, dict[str, int]]:
        return {name: asdict(d.counters) for name, d in self.directions.items()}

    # --- asyncio.DatagramProtocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        upstream = self.upstreams.get(addr)
        if upstream is None:
            # First packet from this client socket: open its upstream socket, hold
            # what arrives until it is ready (the first packets are STUN, worth keeping).
            if addr in self.pending:
                self.pending[addr].append(data)
                return
            self.pending[addr] = [data]
            assert self.loop is not None
            self.loop.create_task(self._open_upstream(addr))
            return
        self._forward(UP, data, lambda d: _send(upstream.transport, d, None))

    async def _open_upstream(self, client: tuple[str, int]) -> None:
        assert self.loop is not None
        _, protocol = await self.loop.create_datagram_endpoint(
            lambda: _Upstream(self, client), remote_addr=self.target
        )
        self.upstreams[client] = protocol
        for data in self.pending.pop(client, []):
            self._forward(UP, data, lambda d: _send(protocol.transport, d, None))

    def from_upstream(self, data: bytes, client: tuple[str, int]) -> None:
        self._forward(DOWN, data, lambda d: _send(self.transport, d, client))

    def _forward(self, direction: str, data: bytes, send: Callable[[bytes], None]) -> None:
        assert self.loop is not None
        now = self.loop.time()
        at = self.directions[direction].schedule(now, len(data), self.rng)
        if at is None:
            return
        if at <= now:
            send(data)
        else:
            self.loop.call_at(at, send, data)


def _send(
    transport: asyncio.DatagramTransport | None, data: bytes, addr: tuple[str, int] | None
) -> None:
    if transport is not None and not transport.is_closing():
        transport.sendto(data, addr)


class RelayHost:
    """Relays on an asyncio loop in a background thread, driven synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="netlab-relay", daemon=True
        )
        self.thread.start()
        self.relays: list[Relay] = []

    def _call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def add(self, target: tuple[str, int], *, port: int = 0, seed: int | None = None) -> Relay:
        relay = Relay(target, seed=seed)
        self._call(lambda: relay.start(port=port))
        self.relays.append(relay)
        return relay

    def set(self, relay: Relay, *, up: Impairment | None = None, down: Impairment | None = None):
        self._call(lambda: relay.set(up=up, down=down))

    def counters(self, relay: Relay) -> dict[str, dict[str, int]]:
        return self._call(relay.counters)

    def close(self) -> None:
        for relay in self.relays:
            self._call(relay.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


__all__ = [
    "CLEAN",
    "DOWN",
    "UP",
    "Impairment",
    "GilbertElliott",
    "TokenBucket",
    "DelayLine",
    "Relay",
    "RelayHost",
    "bursty_loss",
    "random_loss",
]
