"""The network lab's impairment relay: the pure models (seeded), then real UDP
through a relay to an echo server (loss, delay, rate and outage as configured)."""

import asyncio
import random
import time

import pytest

from netlab.relay import (
    DOWN,
    UP,
    DelayLine,
    Direction,
    GilbertElliott,
    Impairment,
    Relay,
    TokenBucket,
    bursty_loss,
    random_loss,
)


def test_random_loss_drops_the_configured_fraction():
    rng = random.Random(7)
    chain = GilbertElliott(random_loss(0.05))
    lost = sum(chain.lose(rng) for _ in range(100_000))
    assert lost / 100_000 == pytest.approx(0.05, abs=0.004)


def test_gilbert_elliott_loss_comes_in_bursts_of_the_configured_mean_length():
    rng = random.Random(11)
    model = bursty_loss(0.10, burst=4.0)
    assert model.mean_loss == pytest.approx(0.10)
    chain = GilbertElliott(model)
    outcomes = [chain.lose(rng) for _ in range(200_000)]
    assert sum(outcomes) / len(outcomes) == pytest.approx(0.10, abs=0.01)
    runs, current = [], 0
    for lost in outcomes:
        if lost:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    assert sum(runs) / len(runs) == pytest.approx(4.0, rel=0.1)
    # Independent loss of the same mean has bursts of ~1.1 packets.
    rng = random.Random(11)
    flat = GilbertElliott(random_loss(0.10))
    flat_runs, current = [], 0
    for _ in range(200_000):
        if flat.lose(rng):
            current += 1
        elif current:
            flat_runs.append(current)
            current = 0
    assert sum(flat_runs) / len(flat_runs) < 1.2


def test_token_bucket_paces_to_the_rate_and_tail_drops_past_the_queue_bound():
    bucket = TokenBucket(100, queue_ms=200, burst_bytes=0)  # 12,500 bytes/s
    waits = [bucket.admit(0.0, 1250) for _ in range(5)]  # 0.1 s of link each
    assert waits[:2] == [pytest.approx(0.1), pytest.approx(0.2)]
    assert waits[2:] == [None, None, None]  # past 200 ms of queue
    # Later, the queue has drained: a packet waits only its own transmission time.
    assert bucket.admit(1.0, 1250) == pytest.approx(0.1)


def test_token_bucket_lets_a_small_burst_through_after_idle():
    bucket = TokenBucket(100, queue_ms=200, burst_bytes=2500)
    assert bucket.admit(10.0, 1250) == 0.0
    assert bucket.admit(10.0, 1250) == 0.0
    assert bucket.admit(10.0, 1250) == pytest.approx(0.1)


def test_delay_line_keeps_order_unless_reordering_is_configured():
    rng = random.Random(3)
    line = DelayLine(50, 40)
    times = [line.departure(i * 0.001, rng) for i in range(1000)]
    assert times == sorted(times)
    assert min(times[i] - i * 0.001 for i in range(1000)) >= 0.010 - 1e-9
    rng = random.Random(3)
    loose = DelayLine(50, 40, reorder=True)
    times = [loose.departure(i * 0.001, rng) for i in range(1000)]
    assert times != sorted(times)


def test_direction_counts_what_it_drops_and_passes():
    rng = random.Random(5)
    d = Direction(Impairment(outage=True))
    assert d.schedule(0.0, 100, rng) is None
    d.apply(random_loss(1.0))
    assert d.schedule(0.0, 100, rng) is None
    d.apply(Impairment(delay_ms=30))
    assert d.schedule(1.0, 100, rng) == pytest.approx(1.03)
    c = d.counters
    assert (c.packets_in, c.dropped_outage, c.dropped_loss, c.packets_out) == (3, 1, 1, 1)


def test_bad_impairments_are_refused():
    with pytest.raises(ValueError, match="loss_good"):
        Impairment(loss_good=1.5)
    with pytest.raises(ValueError, match="rate_kbps"):
        Impairment(rate_kbps=0)


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class _Client(asyncio.DatagramProtocol):
    def __init__(self):
        self.got: dict[int, float] = {}
        self.bytes = 0

    def datagram_received(self, data, addr):
        self.got[int.from_bytes(data[:4], "big")] = time.monotonic()
        self.bytes += len(data)


async def _through_relay(up: Impairment, down: Impairment, *, seed: int = 1):
    loop = asyncio.get_running_loop()
    echo_t, echo = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    relay = await Relay(echo_t.get_extra_info("sockname"), seed=seed).start()
    relay.set(up=up, down=down)
    client_t, client = await loop.create_datagram_endpoint(
        _Client, remote_addr=("127.0.0.1", relay.port)
    )
    return relay, client_t, client, echo_t


async def _drain(client: _Client, expected: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline and len(client.got) < expected:
        if len(client.got) != last:
            last, quiet_since = len(client.got), time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return  # nothing more is coming
        await asyncio.sleep(0.02)


async def test_real_udp_through_the_relay_sees_the_configured_loss_and_delay():
    relay, client_t, client, echo_t = await _through_relay(
        random_loss(0.2, delay_ms=40), Impairment(delay_ms=20)
    )
    try:
        sent = {}
        for i in range(1000):
            sent[i] = time.monotonic()
            client_t.sendto(i.to_bytes(4, "big") + b"x" * 96)
            if i % 50 == 49:
                await asyncio.sleep(0.005)
        await _drain(client, 1000)
        loss = 1 - len(client.got) / 1000
        assert loss == pytest.approx(0.2, abs=0.04)
        rtts = sorted((client.got[i] - sent[i]) * 1000 for i in client.got)
        median = rtts[len(rtts) // 2]
        assert 58 <= median <= 200, median  # 40 ms up + 20 ms down, plus a busy loop's slack
        counters = relay.counters()
        assert counters[UP]["packets_in"] == 1000
        assert counters[UP]["dropped_loss"] == 1000 - counters[UP]["packets_out"]
        assert counters[DOWN]["packets_in"] == counters[UP]["packets_out"]
    finally:
        relay.close()
        client_t.close()
        echo_t.close()


async def test_real_udp_through_the_relay_is_capped_to_the_configured_rate():
    relay, client_t, client, echo_t = await _through_relay(
        Impairment(rate_kbps=400, queue_ms=200), Impairment()
    )
    try:
        # 2 s at ~1.6 Mbit/s offered into a 400 kbit/s cap.
        start = time.monotonic()
        for i in range(400):
            client_t.sendto(i.to_bytes(4, "big") + b"x" * 996)
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.005 - time.monotonic()))
        await _drain(client, 400)
        times = sorted(client.got.values())
        rate_kbps = (len(times) - 1) * 1000 * 8 / (times[-1] - times[0]) / 1000
        assert rate_kbps == pytest.approx(400, rel=0.15)
        assert relay.counters()[UP]["dropped_queue"] > 200  # the tail drops, as tbf does
    finally:
        relay.close()
        client_t.close()
        echo_t.close()


async def test_an_outage_set_live_drops_everything_until_it_is_lifted():
    relay, client_t, client, echo_t = await _through_relay(Impairment(), Impairment())
    try:
        client_t.sendto((0).to_bytes(4, "big"))
        await _drain(client, 1)
        relay.set(down=Impairment(outage=True))
        for i in range(1, 51):
            client_t.sendto(i.to_bytes(4, "big"))
        await asyncio.sleep(0.2)
        assert set(client.got) == {0}
        relay.set(down=Impairment())
        client_t.sendto((99).to_bytes(4, "big"))
        await _drain(client, 2)
        assert set(client.got) == {0, 99}
        assert relay.counters()[DOWN]["dropped_outage"] == 50
    finally:
        relay.close()
        client_t.close()
        echo_t.close()
