"""Hundreds of sockets on one real daphne process, all sending at the same moment."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from tests.fixtures import rawsocket
from tests.fixtures.live import daphne_service
from tests.fixtures.sockets import session_cookie_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

SOCKETS = 360
PER_ROOM = 12  # ROOM_MAX_CAPACITY
GENEROUS = {
    # One test client is one address and one account: lift the limits that
    # would otherwise (rightly) refuse it, so only the server's capacity is tested.
    "CONNECT_RATE_IP_PER_S": "1000",
    "CONNECT_RATE_IP_BURST": "5000",
    "FRAME_RATE_IP_PER_S": "1000",
    "FRAME_RATE_IP_BURST": "5000",
    "FRAME_RATE_PER_S": "1000",
    "FRAME_RATE_BURST": "5000",
}


@pytest.fixture
def roomy_daphne(django_db_setup):
    service = daphne_service(**GENEROUS).start()
    yield service
    service.stop()


async def test_hundreds_of_simultaneous_frames_on_one_process_are_all_answered(
    roomy_daphne, owner, settings
):
    settings.ROOMS_PER_USER_MAX = 1000  # one owner makes every room of this test
    base = f"http://127.0.0.1:{roomy_daphne.port}"
    slugs = []
    for i in range(-(-SOCKETS // PER_ROOM)):
        room = await sync_to_async(services.room_create)(
            owner=owner, name=f"Load {i}", slug=f"load-{i}", capacity=PER_ROOM, guest_access=False
        )
        slugs.append(room.slug)
    cookie = await session_cookie_for(owner)

    async def join(i: int):
        ws = await rawsocket.connect(base, cookie=cookie, slug=slugs[i // PER_ROOM])
        await rawsocket.hello(ws)
        return ws

    sockets = []
    try:
        for start in range(0, SOCKETS, 60):
            sockets += await asyncio.gather(*(join(i) for i in range(start, start + 60)))
        # Every socket's heartbeat at the same moment: each needs Redis
        # (rate limit, presence touch, reap) while the others hold connections.
        await asyncio.gather(
            *(ws.send(json.dumps({"type": "ping", "t": i})) for i, ws in enumerate(sockets))
        )
        pongs = await asyncio.gather(
            *(rawsocket.recv_until(ws, "pong", timeout=60) for ws in sockets),
            return_exceptions=True,
        )
        failed = [(i, p) for i, p in enumerate(pongs) if isinstance(p, BaseException)]
        assert not failed, f"{len(failed)} of {SOCKETS} sockets unanswered: {failed[:3]}"
        assert [p["t"] for p in pongs] == list(range(SOCKETS))
        assert all(p["present"] is True for p in pongs)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    log = roomy_daphne.log_path.read_text(errors="replace")
    assert "MaxConnectionsError" not in log and "Traceback" not in log, log[-3000:]
