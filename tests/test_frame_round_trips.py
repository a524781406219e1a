"""Each room-socket frame costs one Redis round trip before its handler runs.

Address, user and the type's own limit (chat.send) and the room's moderation
revision go in one script call (rooms.security.AddressGate.charge): two round
trips in turn per frame raised the chat median at 8,000 deliveries/s from 25
to 37 ms (bench/RESULTS.md). Counted on the app's own Redis connections
(videochat.storeerrors.CountedAsyncConnection; the channel layer has its own),
real Redis, the real ASGI router and the real chat.send handler.
"""

from contextvars import ContextVar

import pytest

from rooms.consumers import RoomConsumer
from rooms.protocol import HANDLER_LIMITS, HANDLERS
from tests.fixtures.sockets import joined, receive_until
from videochat import ratelimit, storeerrors

pytestmark = pytest.mark.django_db(transaction=True)


class Frame:
    """Requests written to Redis on one frame's behalf (a command or a pipeline:
    one round trip each), counted through a context variable, so the work other
    frames left running (a chat wake-up) is not counted against this one."""

    def __init__(self) -> None:
        self.sent = 0
        self.at_handler: int | None = None


current: ContextVar[Frame | None] = ContextVar("current", default=None)
# Opening a connection (HELLO, CLIENT SETINFO) is the pool's cost, not the frame's.
connecting: ContextVar[bool] = ContextVar("connecting", default=False)


@pytest.fixture
def frames(monkeypatch, settings) -> list[Frame]:
    settings.SOCKET_CHECK_INTERVAL_S = 3600  # no periodic re-check during the test
    counted: list[Frame] = []
    send = storeerrors.CountedAsyncConnection.send_packed_command

    async def send_packed_command(self, command, check_health=True):
        frame = current.get()
        if frame is not None and check_health and not connecting.get():
            frame.sent += 1  # not a health-check PING, nor a new connection's HELLO
        await send(self, command, check_health)

    connect = storeerrors.CountedAsyncConnection.connect

    async def connect_uncounted(self):
        opening = connecting.set(True)
        try:
            await connect(self)
        finally:
            connecting.reset(opening)

    monkeypatch.setattr(
        storeerrors.CountedAsyncConnection, "send_packed_command", send_packed_command
    )
    monkeypatch.setattr(storeerrors.CountedAsyncConnection, "connect", connect_uncounted)
    receive = RoomConsumer.receive

    async def receive_counted(self, text_data=None, bytes_data=None):
        frame = Frame()
        counted.append(frame)
        current.set(frame)  # this task's context: the frame's own calls and batches
        await receive(self, text_data=text_data, bytes_data=bytes_data)

    monkeypatch.setattr(RoomConsumer, "receive", receive_counted)
    chat_send = HANDLERS["chat.send"]

    async def chat_send_counted(session, frame):
        counting = current.get()
        assert counting is not None
        counting.at_handler = counting.sent
        await chat_send(session, frame)

    monkeypatch.setitem(HANDLERS, "chat.send", chat_send_counted)
    return counted


async def test_a_chat_send_costs_one_round_trip_before_its_handler(room, owner, frames):
    assert "chat.send" in HANDLER_LIMITS  # it has its own limit, charged in the same call
    async with joined(owner) as (comm, _):
        for i in range(5):
            await comm.send_json_to({"type": "chat.send", "body": "hi", "client_id": f"c{i}"})
            await receive_until(comm, "chat.ack")
    sends = [f for f in frames if f.at_handler is not None]
    assert [f.at_handler for f in sends] == [1] * 5


async def test_an_invalid_frame_costs_one_round_trip_in_all(room, owner, frames):
    async with joined(owner) as (comm, _):
        first = len(frames)
        for text in ("{not json", '{"type": "nope.nothing"}', '{"type": "ping", "t": "%s"}'):
            await comm.send_to(text_data=text % ("x" * 400) if "%s" in text else text)
            error = await receive_until(comm, "error")
            assert error["code"] in ("bad_json", "unknown_type", "too_large")
        assert [f.sent for f in frames[first:]] == [1, 1, 1]


async def test_over_its_own_limit_a_frame_is_refused_but_the_next_of_another_type_passes(
    room, owner, frames, monkeypatch
):
    """The type's refusal is no strike against the address: a ping right after is answered."""
    monkeypatch.setitem(HANDLER_LIMITS, "chat.send", ratelimit.Limit("t-chat", rate=0.01, burst=1))
    async with joined(owner) as (comm, _):
        await comm.send_json_to({"type": "chat.send", "body": "a", "client_id": "a"})
        await receive_until(comm, "chat.ack")
        await comm.send_json_to({"type": "chat.send", "body": "b", "client_id": "b", "ref": 7})
        refused = await receive_until(comm, "error")
        assert refused["code"] == "rate_limited" and refused["retry_after"] > 1
        assert refused["ref"] == 7
        await comm.send_json_to({"type": "ping", "t": 1})
        assert (await receive_until(comm, "pong"))["t"] == 1
    # The refused frame's handler never ran; it cost its one round trip all the same.
    hello, accepted, over = frames[:3]
    assert (accepted.at_handler, over.at_handler, over.sent) == (1, None, 1)
