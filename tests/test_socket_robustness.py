"""The socket survives what clients send, and a failure of ours ends it cleanly.

Against the real daphne (raw ``websockets`` client) where the transport
matters; through the ASGI router where a fault must be injected.
"""

import json

import pytest

from rooms import presence
from rooms.protocol import HANDLERS
from tests.fixtures import rawsocket
from tests.fixtures.sockets import joined, receive_until, session_cookie_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.live
async def test_deeply_nested_frames_get_bad_json_and_the_socket_stays(daphne, live_url, member):
    offset = daphne.log_path.stat().st_size
    ws = await rawsocket.connect(live_url, cookie=await session_cookie_for(member.user))
    try:
        await rawsocket.hello(ws)
        deep_list = "[" * 32000 + "]" * 32000
        deep_dict = '{"a":' * 9000 + "1" + "}" * 9000
        for ref, value in (("list", deep_list), ("dict", deep_dict), ("mid", "[" * 40 + "]" * 40)):
            await ws.send(f'{{"type": "signal.ice", "ref": "{ref}", "candidate": {value}}}')
            error = await rawsocket.recv_until(ws, "error")
            assert error["code"] == "bad_json", error
        await ws.send(json.dumps({"type": "ping", "t": "after"}))
        assert (await rawsocket.recv_until(ws, "pong"))["t"] == "after"
    finally:
        await ws.close()
    log = rawsocket.log_since(daphne.log_path, offset)
    assert "Traceback" not in log and "RecursionError" not in log, log[-3000:]


async def test_a_failing_handler_closes_with_4500_and_the_peer_goes_into_grace(
    member, room, monkeypatch
):
    async def boom(consumer, frame):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setitem(HANDLERS, "test.boom", boom)
    async with joined(member.user) as (comm, welcome):
        await comm.send_json_to({"type": "test.boom"})
        assert (await receive_until(comm, "error"))["code"] == "internal"
        closed = await comm.receive_output(timeout=5)
        assert (closed["type"], closed["code"]) == ("websocket.close", 4500)
        # What daphne does next: report the close, so disconnect() runs.
        await comm.disconnect(code=4500)
        peer_id = welcome["peer_id"]
        # The normal path ran: the socket no longer serves the peer, which
        # waits for a resume instead of swallowing signals as a ghost.
        assert await presence.presence_channel(room_id=room.id, peer_id=peer_id) is None
        assert await presence.presence_get(room_id=room.id, peer_id=peer_id) is not None


async def test_lone_surrogates_are_bad_request_with_their_ref_and_pairs_are_text(member):
    async with joined(member.user) as (comm, _):
        for text in (
            '{"type": "signal.ice", "to": "\\ud800", "candidate": null, "ref": "s1"}',
            '{"type": "chat.send", "client_id": "c1", "body": "a\\udfff", "ref": "s2"}',
            '{"type": "ping", "\\udc00": 1, "ref": "s3"}',
        ):
            await comm.send_to(text_data=text)
            error = await receive_until(comm, "error")
            # Permanent, and matched to its frame: an outbox fails that message.
            assert error["code"] == "bad_request", (text, error)
            assert error["ref"] == json.loads(text)["ref"], (text, error)
        # A proper pair is one character (U+1F600) and goes through.
        await comm.send_to(text_data='{"type": "ping", "t": "\\ud83d\\ude00"}')
        assert (await receive_until(comm, "pong"))["t"] == "\U0001f600"


async def test_a_failure_in_connect_is_accepted_and_closed_with_4500(member, monkeypatch):
    from rooms import selectors
    from tests.fixtures.sockets import communicator

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(selectors, "socket_access", broken)
    comm = await communicator(slug="standup", cookie=await session_cookie_for(member.user))
    connected, _ = await comm.connect()
    assert connected, "a refusal before accept reaches the browser as 1006 with no code"
    assert (await comm.receive_json_from(timeout=5))["code"] == "internal"
    closed = await comm.receive_output(timeout=5)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4500)
    await comm.disconnect(code=4500)


async def test_a_failing_task_beside_the_frame_loop_closes_like_a_handler(
    member, room, monkeypatch
):
    async def fails_later():
        raise RuntimeError("a bug after the frame was taken")

    async def starts_it(consumer, frame):
        await consumer.run_beside(fails_later(), window=4)

    monkeypatch.setitem(HANDLERS, "test.beside", starts_it)
    async with joined(member.user) as (comm, welcome):
        await comm.send_json_to({"type": "test.beside"})
        assert (await receive_until(comm, "error"))["code"] == "internal"
        closed = await comm.receive_output(timeout=5)
        assert (closed["type"], closed["code"]) == ("websocket.close", 4500)
        await comm.disconnect(code=4500)
        channel = await presence.presence_channel(room_id=room.id, peer_id=welcome["peer_id"])
        assert channel is None  # in resume grace, not a ghost
