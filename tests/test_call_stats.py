"""call.stats through the real ASGI router into the real MongoDB-protocol server:
validation, per-message authorization, the rate limit, the call id, and a MongoDB
that is down (the socket keeps serving; the failure is counted)."""

import json
import time

import pytest
from asgiref.sync import sync_to_async
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rooms import telemetry
from tests.fixtures.sockets import joined, receive_until
from videochat import metricsview, mongo
from videochat.devstack import free_port, scaled

pytestmark = pytest.mark.django_db(transaction=True)


def sample(peer: str, **extra):
    base = {
        "peer": peer,
        "t": int(time.time() * 1000),
        "rtt": 152.0,
        "loss_in": 0.05,
        "loss_out": 0.04,
        "jitter": 12.0,
        "bw_out": 1200,
        "send_kbps": 900,
        "recv_kbps": 850,
        "qlr": "none",
        "fps_in": 29.0,
        "decoded": 58,
        "dropped": 0,
        "freezes": 0,
        "freeze_ms": 0,
        "conceal": 0.0,
        "relay": True,
        "level": "full",
        "pred": 0.12,
        "events": ["step:reduced:loss"],
    }
    return {**base, **extra}


def stats(*samples):
    return {"type": "call.stats", "samples": list(samples)}


def counted(outcome: str) -> float:
    text = generate_latest(metricsview.registry()).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "huddle_call_stats_samples_total" and s.labels == {"outcome": outcome}:
                return s.value
    return 0.0


async def set_in_call(comm, peer_id: str, value: bool = True):
    """Enter (or leave) the call and wait until the room says so."""
    await comm.send_json_to({"type": "presence.update", "in_call": value})
    for _ in range(20):
        peer = (await receive_until(comm, "presence.update"))["peer"]
        if peer["peer_id"] == peer_id and peer["in_call"] is value:
            return
    raise AssertionError(f"{peer_id} never showed in_call={value}")


async def in_call(comm):
    await comm.send_json_to({"type": "presence.update", "in_call": True})
    await receive_until(comm, "presence.update")


async def send_when_allowed(comm, frame):
    """Send ``frame``; if the socket's call.stats rate refuses it, again when it says."""
    for _ in range(5):
        await comm.send_json_to(frame)
        error = await receive_until(comm, "error")
        if error["code"] != "rate_limited":
            return error
        await comm.receive_nothing(timeout=error["retry_after"])
    raise AssertionError("still rate limited")


async def flushed():
    assert await sync_to_async(telemetry.writer.flush)(timeout=scaled(10))


@pytest.fixture
def stats_db(deadletter_db):
    mongo._indexed.clear()
    return deadletter_db


async def test_samples_about_call_peers_are_stored_one_document_each(
    room, owner, member, stats_db, settings
):
    settings.CALL_STATS_TTL_DAYS = 3
    async with joined(owner) as (alice, wa), joined(member.user) as (bob, wb):
        await in_call(alice)
        await in_call(bob)
        a, b = wa["peer_id"], wb["peer_id"]
        await alice.send_json_to(stats(sample(b)))
        await bob.send_json_to(stats(sample(a, rtt=None, level="audio", events=[])))
        # No reply when accepted: the next frame's answer comes first.
        await alice.send_json_to({"type": "ping", "t": 1})
        assert (await receive_until(alice, "pong"))["t"] == 1
        await flushed()
        docs = await sync_to_async(telemetry.samples_for)(room="standup")
    assert sorted((d["from_peer"], d["to_peer"]) for d in docs) == sorted([(a, b), (b, a)])
    first = next(d for d in docs if d["from_peer"] == a)
    assert first["room"] == "standup" and first["loss_in"] == 0.05 and first["relay"] is True
    assert first["events"] == ["step:reduced:loss"] and first["decoded"] == 58
    assert first["at"].tzinfo is not None
    assert first["expire_at"] - first["at"] == telemetry.timedelta(days=3)
    second = next(d for d in docs if d["from_peer"] == b)
    assert second["rtt"] is None and second["level"] == "audio"
    assert first["call"] == second["call"]  # one call
    indexes = telemetry.collection().index_information()
    ttl = [i for i in indexes.values() if "expireAfterSeconds" in i]
    assert ttl and ttl[0]["key"] == [("expire_at", 1)] and ttl[0]["expireAfterSeconds"] == 0
    keys = [[k for k, _ in i["key"]] for i in indexes.values()]
    assert ["room", "call", "from_peer", "to_peer", "at"] in keys


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"loss_in": 1.5}, "loss_in"),
        ({"rtt": "slow"}, "rtt"),
        ({"rtt": -1}, "rtt"),
        ({"decoded": 1.5}, "decoded"),
        ({"freezes": True}, "freezes"),
        ({"qlr": "weather"}, "qlr"),
        ({"level": "audio-only"}, "level"),
        ({"relay": "yes"}, "relay"),
        ({"events": ["x"] * 9}, "events"),
        ({"events": ["<script>"]}, "events"),
        ({"t": "now"}, "t"),
        ({"peer": ""}, "peer"),
    ],
)
async def test_a_malformed_sample_refuses_the_frame_with_bad_stats(
    room, owner, member, stats_db, bad, field
):
    async with joined(owner) as (alice, _), joined(member.user) as (bob, wb):
        await in_call(alice)
        await in_call(bob)
        good = sample(wb["peer_id"])
        await alice.send_json_to({**stats(good, {**sample("other"), **bad}), "ref": 7})
        error = await receive_until(alice, "error")
        assert error["code"] == "bad_stats" and error["field"] == field, error
        assert error["index"] == 1 and error["ref"] == 7
        await flushed()
        assert await sync_to_async(telemetry.samples_for)(room="standup") == []


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "call.stats"},
        {"type": "call.stats", "samples": []},
        {"type": "call.stats", "samples": {"peer": "x"}},
        {"type": "call.stats", "samples": [sample(f"p{i}") for i in range(17)]},
        {"type": "call.stats", "samples": [sample("p"), sample("p")]},
    ],
)
async def test_a_frame_without_1_to_16_distinct_samples_is_refused(room, owner, stats_db, frame):
    async with joined(owner) as (alice, _):
        await in_call(alice)
        await alice.send_json_to(frame)
        assert (await receive_until(alice, "error"))["code"] == "bad_stats"


async def test_non_finite_numbers_are_refused(room, owner, member, stats_db):
    async with joined(owner) as (alice, _), joined(member.user) as (bob, wb):
        await in_call(alice)
        await in_call(bob)
        text = json.dumps(stats(sample(wb["peer_id"], rtt=float("nan"))))
        assert "NaN" in text  # Python's json writes it, and reads it back
        await alice.send_to(text_data=text)
        error = await receive_until(alice, "error")
        assert error["code"] == "bad_stats" and error["field"] == "rtt"


async def test_only_a_peer_in_the_call_may_report_and_only_on_peers_in_the_call(
    room, owner, member, stats_db
):
    async with joined(owner) as (alice, wa), joined(member.user) as (bob, wb):
        a, b = wa["peer_id"], wb["peer_id"]
        await alice.send_json_to(stats(sample(b)))
        assert (await receive_until(alice, "error"))["code"] == "not_in_call"
        await in_call(alice)
        # Bob is in the room but not in the call; "ghost" is nobody; a is alice herself.
        await alice.send_json_to(stats(sample(b), sample("ghost"), sample(a)))
        error = await receive_until(alice, "error")
        assert error["code"] == "stats_peer_unknown"
        assert sorted(error["peers"]) == sorted([b, "ghost", a])
        await set_in_call(bob, b)
        error = await send_when_allowed(alice, stats(sample(b), sample("ghost")))
        assert error["code"] == "stats_peer_unknown" and error["peers"] == ["ghost"]
        await flushed()
        docs = await sync_to_async(telemetry.samples_for)(room="standup")
    assert [(d["from_peer"], d["to_peer"]) for d in docs] == [(a, b)]


async def test_another_rooms_peer_is_not_a_call_peer(room, owner, member, stats_db, owner_room2):
    async with joined(owner) as (alice, _), joined(member.user) as (bob, wb):
        await in_call(bob)
        async with joined(owner, slug=owner_room2.slug) as (elsewhere, _):
            await in_call(elsewhere)
            await elsewhere.send_json_to(stats(sample(wb["peer_id"])))
            error = await receive_until(elsewhere, "error")
            assert error["code"] == "stats_peer_unknown"


@pytest.fixture
def owner_room2(owner):
    from rooms import services

    return services.room_create(
        owner=owner, name="Retro", slug="retro", capacity=6, guest_access=True
    )


async def test_frames_beyond_the_rate_are_refused_with_retry_after(room, owner, member, stats_db):
    async with joined(owner) as (alice, _), joined(member.user) as (bob, wb):
        await in_call(alice)
        await in_call(bob)
        for _ in range(telemetry.RATE_BURST):
            await alice.send_json_to(stats(sample(wb["peer_id"])))
        await alice.send_json_to(stats(sample(wb["peer_id"])))
        error = await receive_until(alice, "error")
        assert error["code"] == "rate_limited"
        assert 0 < error["retry_after"] <= telemetry.RATE_INTERVAL_S
        await flushed()
        docs = await sync_to_async(telemetry.samples_for)(room="standup")
    assert len(docs) == telemetry.RATE_BURST


async def test_a_frame_over_its_size_limit_is_refused(room, owner, stats_db):
    async with joined(owner) as (alice, _):
        await in_call(alice)
        frame = stats(sample("p", events=[]))
        frame["pad"] = "x" * telemetry.MAX_FRAME_CHARS
        await alice.send_json_to(frame)
        error = await receive_until(alice, "error")
        assert error["code"] == "too_large" and error["limit"] == telemetry.MAX_FRAME_CHARS


async def test_a_new_call_gets_a_new_call_id(room, owner, member, stats_db):
    async with joined(owner) as (alice, wa), joined(member.user) as (bob, wb):
        await in_call(alice)
        await in_call(bob)
        await alice.send_json_to(stats(sample(wb["peer_id"])))
        await flushed()
        # Everyone leaves the call (it ends), then enters again: a second call.
        await set_in_call(alice, wa["peer_id"], False)
        await set_in_call(bob, wb["peer_id"], False)
        await set_in_call(alice, wa["peer_id"])
        await set_in_call(bob, wb["peer_id"])
        await alice.send_to(text_data=json.dumps(stats(sample(wb["peer_id"]))))
        await alice.send_json_to({"type": "ping", "t": 2})
        assert (await receive_until(alice, "pong"))["t"] == 2
        await flushed()
        docs = await sync_to_async(telemetry.samples_for)(room="standup")
        calls = await sync_to_async(telemetry.calls_for)(room="standup")
    assert len(docs) == 2 and docs[0]["call"] != docs[1]["call"]
    assert [c["call"] for c in calls] == [docs[1]["call"], docs[0]["call"]]
    assert calls[0]["samples"] == 1 and set(calls[0]["peers"]) == {wa["peer_id"], wb["peer_id"]}


async def test_mongodb_down_costs_the_socket_nothing_and_is_counted(
    room, owner, member, stats_db, settings
):
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/"  # nothing listens
    failed_before = counted("failed")
    async with joined(owner) as (alice, _), joined(member.user) as (bob, wb):
        await in_call(alice)
        await in_call(bob)
        started = time.monotonic()
        await alice.send_json_to(stats(sample(wb["peer_id"])))
        await alice.send_json_to({"type": "chat.send", "client_id": "c1", "body": "still here"})
        ack = await receive_until(alice, "chat.ack")
        answered = time.monotonic() - started
        assert ack["client_id"] == "c1"
        # The write waits for MongoDB's 2 s server selection in the writer thread,
        # not in the socket: the chat message was acknowledged well before.
        assert answered < 1.5, answered
        await flushed()
    assert counted("failed") == failed_before + 1
