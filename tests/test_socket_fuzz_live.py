"""Several clients throw malformed frames at the real daphne while honest ones chat.

Nested, oversized, invalid UTF-8, lone-surrogate and binary frames, from
several sockets at once. Afterwards: every honest send was acknowledged, the
server logged no traceback, and the room's presence holds only live peers.
"""

import asyncio
import json
import random
import time
import uuid

import pytest
import websockets
from asgiref.sync import sync_to_async

from rooms import presence, services
from tests.conftest import make_user
from tests.fixtures import rawsocket
from tests.fixtures.live import daphne_service
from tests.fixtures.sockets import session_cookie_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

FUZZERS = 4
HONEST = 2
SENDS = 25


@pytest.fixture
def fuzz_daphne(django_db_setup):
    # One address for every client here: give it room, so the test is about
    # robustness (the limits have their own tests); a short resume grace, so
    # the fuzzers' dropped peers leave within the test.
    service = daphne_service(
        FRAME_RATE_IP_PER_S="2000",
        FRAME_RATE_IP_BURST="20000",
        FRAME_RATE_PER_S="2000",
        FRAME_RATE_BURST="20000",
        CONNECT_RATE_IP_PER_S="100",
        CONNECT_RATE_IP_BURST="200",
        CALL_RESUME_GRACE_S="1",
        SOCKET_CHECK_INTERVAL_S="1",
    ).start()
    yield service
    service.stop()


def nested(depth: int, rng: random.Random) -> str:
    """A value ``depth`` levels deep, in at most ~60,000 characters."""
    if rng.random() < 0.5:
        return "[" * depth + "1" + "]" * depth
    depth = min(depth, 9000)
    return '{"a":' * depth + "1" + "}" * depth


def junk_frames(rng: random.Random, n: int) -> list[tuple[str, str | bytes, bool | None]]:
    """(kind, payload, text?): text=True sends bytes as a text frame, unchecked."""
    types = ["ping", "chat.send", "signal.ice", "signal.offer", "presence.update", "mod.kick",
             "chat.sync", "hello", "turn.refresh", "nope"]  # fmt: skip
    out: list[tuple[str, str | bytes, bool | None]] = []
    for _ in range(n):
        kind = rng.choice(["deep", "deep_field", "mid", "big", "huge", "utf8", "surrogate",
                           "surrogate_raw", "binary", "garbage", "fields"])  # fmt: skip
        t = rng.choice(types)
        if kind == "deep":
            out.append((kind, nested(rng.randint(2000, 20000), rng), None))
        elif kind == "deep_field":
            value = nested(rng.randint(33, 4000), rng)
            out.append((kind, f'{{"type": "{t}", "candidate": {value}, "body": {value}}}', None))
        elif kind == "mid":
            value = nested(rng.randint(5, 31), rng)
            out.append((kind, f'{{"type": "{t}", "to": {value}, "t": {value}, "ref": "m"}}', None))
        elif kind == "big":
            out.append((kind, json.dumps({"type": t, "sdp": "x" * rng.randint(300, 60000)}), None))
        elif kind == "huge":  # over daphne's limit: the server drops the socket
            out.append((kind, json.dumps({"type": t, "sdp": "x" * 70000}), None))
        elif kind == "utf8":  # invalid UTF-8 in a text frame: the socket is failed (1007)
            out.append((kind, b'{"type": "ping", "t": "\xff\xfe\xc3"}', True))
        elif kind == "surrogate":  # escaped lone surrogates: valid JSON, odd strings
            body = rng.choice(["\\ud800", "\\udfff", "a\\ud83d", "\\udc00\\ud800"])
            field = rng.choice(["body", "t", "client_id", "sdp", "to", "ref", "reason"])
            text = f'{{"type": "{t}", "{field}": "{body}", "client_id": "c{rng.random()}"}}'
            out.append((kind, text, None))
        elif kind == "surrogate_raw":  # a surrogate encoded as UTF-8: invalid UTF-8
            out.append((kind, b'{"type": "chat.send", "body": "\xed\xa0\x80"}', True))
        elif kind == "binary":
            out.append((kind, rng.randbytes(rng.randint(1, 5000)), None))
        elif kind == "garbage":
            out.append((kind, rng.choice(["", "{", "null", "[]", '"x"', "1e999", "{}"]), None))
        else:
            frame = {"type": t}
            for key in rng.sample(["to", "sdp", "body", "client_id", "after_seq", "member_id",
                                   "candidate", "audio", "limit"], 3):  # fmt: skip
                frame[key] = rng.choice([None, -1, 2**70, 1.5, "", "x" * 70, [], {}, True])
            out.append((kind, json.dumps(frame), None))
    return out


# Frames after which the server (daphne) drops the connection by design.
FATAL = ("huge", "utf8", "surrogate_raw")


async def fuzzer(base: str, cookie: str, seed: int) -> tuple[int, int, list[int | None]]:
    """Send every junk frame: (sockets used, sockets whose junk was all answered, and
    the close codes of the others)."""
    rng = random.Random(seed)
    frames = junk_frames(rng, 160)
    fatal = [(p, t) for kind, p, t in frames if kind in FATAL]
    benign = [(p, t) for kind, p, t in frames if kind not in FATAL]
    answered = rounds = 0
    lost: list[int | None] = []  # close codes of sockets that died before answering
    while benign or fatal:
        rounds += 1
        batch, benign = benign[:20], benign[20:]
        ws = await rawsocket.connect(base, cookie=cookie)
        try:
            if rng.random() < 0.7:
                try:
                    await rawsocket.hello(ws, in_call=True)
                except websockets.ConnectionClosed as closed:
                    # Seats still held by this fuzzer's dropped sockets (room_full).
                    assert closed.rcvd is not None and closed.rcvd.code == 4409, closed
                    ws = await rawsocket.connect(base, cookie=cookie)
            for payload, text in batch:
                await ws.send(payload, text=text)
            # Everything before the marker was handled once it is answered
            # (pong after hello, else not_ready echoing the ref).
            marker = f"marker-{seed}-{len(benign)}"
            await ws.send(json.dumps({"type": "ping", "t": marker, "ref": marker}))
            while True:
                frame = await rawsocket.recv_json(ws, timeout=20)
                if marker in (frame.get("t"), frame.get("ref")):
                    answered += 1
                    break
            if fatal:
                payload, text = fatal.pop()
                await ws.send(payload, text=text)
                await rawsocket.close_code(ws)
            elif rng.random() < 0.5:
                await asyncio.wait_for(ws.close(), 5)
        except websockets.ConnectionClosed as closed:
            lost.append(closed.rcvd.code if closed.rcvd else None)
        finally:
            ws.transport.abort()  # the rest leave with no goodbye at all
    return rounds, answered, lost


async def honest(ws) -> tuple[set[str], set[str]]:
    """Chat like the outbox does; the client ids sent and those acknowledged."""
    await ws.send(json.dumps({"type": "chat.sync", "after_seq": 0}))
    sent: set[str] = set()
    acked: set[str] = set()
    pending: dict[str, float] = {}
    for _ in range(SENDS):
        cid = str(uuid.uuid4())
        sent.add(cid)
        pending[cid] = 0
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        for cid, due in list(pending.items()):
            if due <= now:  # like the outbox: send, and resend until acked
                frame = {"type": "chat.send", "client_id": cid, "body": f"hi {cid}", "ref": cid}
                await ws.send(json.dumps(frame))
                pending[cid] = now + 5
        try:
            frame = await rawsocket.recv_json(ws, timeout=0.5)
        except TimeoutError:
            continue
        if frame["type"] == "chat.ack":
            acked.add(frame["client_id"])
            pending.pop(frame["client_id"], None)
        elif frame["type"] == "error":
            assert frame["code"] in ("rate_limited", "unavailable"), frame
            if frame.get("ref") in pending:
                pending[frame["ref"]] = time.monotonic() + frame["retry_after"]
    return sent, acked


async def test_fuzzing_clients_leave_the_server_and_the_honest_clients_unharmed(
    fuzz_daphne, room, member, django_user_model
):
    base = f"http://127.0.0.1:{fuzz_daphne.port}"
    offset = fuzz_daphne.log_path.stat().st_size
    honest_users = [member.user]
    for i in range(HONEST - 1):
        user = await sync_to_async(make_user)(django_user_model, f"honest{i}")
        await sync_to_async(services.membership_join)(invite=await room.invites.afirst(), user=user)
        honest_users.append(user)
    fuzz_user = await sync_to_async(make_user)(django_user_model, "mallory")
    await sync_to_async(services.membership_join)(
        invite=await room.invites.afirst(), user=fuzz_user
    )
    fuzz_cookies = [await session_cookie_for(fuzz_user) for _ in range(FUZZERS)]
    honest_cookies = [await session_cookie_for(u) for u in honest_users]

    await sync_to_async(type(room).objects.filter(pk=room.pk).update)(capacity=12)
    sockets = [await rawsocket.connect(base, cookie=c) for c in honest_cookies]
    welcomes = [await rawsocket.hello(ws) for ws in sockets]
    try:
        results = await asyncio.gather(
            *(fuzzer(base, c, seed) for seed, c in enumerate(fuzz_cookies)),
            *(honest(ws) for ws in sockets),
        )
        # Every batch of junk was handled and answered, except where a junk
        # hello ended the handshake as documented (4400): no socket died of it.
        for rounds, answered, lost in results[:FUZZERS]:
            assert rounds >= 5 and answered + len(lost) == rounds, results[:FUZZERS]
            assert set(lost) <= {4400}, results[:FUZZERS]
        for sent, acked in results[FUZZERS:]:
            assert sent == acked, f"{len(sent - acked)} honest sends never acknowledged"
        live = {welcome["peer_id"] for welcome in welcomes}
        # The fuzzers are gone; after their resume grace the room holds only
        # the live peers (an honest heartbeat reaps; poll until it did).
        deadline = time.monotonic() + 15
        while True:
            for ws in sockets:
                await ws.send(json.dumps({"type": "ping", "t": "reap"}))
                pong = await rawsocket.recv_until(ws, "pong")
                assert pong["present"] is True
            peers = {p["peer_id"] for p in await presence.presence_list(room_id=room.id)}
            if peers == live or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert peers == live
    finally:
        for ws in sockets:
            await ws.close()
    log = rawsocket.log_since(fuzz_daphne.log_path, offset)
    failures = [
        i
        for i, line in enumerate(log.splitlines())
        if "Traceback" in line or "socket_failed" in line
    ]
    assert not failures, (
        "\n".join(log.splitlines()[failures[0] - 2 : failures[0] + 90]) if failures else ""
    )
