"""The practical ceiling for chat fan-out: a bare `websockets` broadcast server.

No persistence, no auth, no channel layer: each chat.send on /ws/rooms/<room>/
is stamped with a per-room seq and broadcast to every socket in that room as a
chat.message of the same shape Huddle sends. Run: python bench/chat_bare_server.py PORT
"""

import asyncio
import json
import sys
from datetime import UTC, datetime

from websockets.asyncio.server import broadcast, serve

rooms: dict[str, set] = {}
seqs: dict[str, int] = {}


async def handler(ws) -> None:
    room = ws.request.path
    members = rooms.setdefault(room, set())
    members.add(ws)
    try:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "hello":
                await ws.send(json.dumps({"type": "welcome"}))
                continue
            if frame.get("type") != "chat.send":
                continue
            seqs[room] = seqs.get(room, 0) + 1
            out = {
                "type": "chat.message",
                "seq": seqs[room],
                "client_id": frame["client_id"],
                "author_id": id(ws) % 100000,
                "author_name": "bench",
                "body": frame["body"],
                "created_at": datetime.now(UTC).isoformat(),
            }
            await ws.send(
                json.dumps({"type": "chat.ack", "client_id": frame["client_id"], "seq": seqs[room]})
            )
            broadcast(members, json.dumps(out))
    finally:
        members.discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, max_size=65536, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
