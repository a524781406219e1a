"""Group commit for chat sends: one transaction for the sends that arrive together.

Every chat.send in this server process goes through one queue per event
loop. While a batch is being written (in the database thread), new sends
queue up and become the next batch, so under load many messages share one
commit (one fsync) and one thread hop, and when idle a send is written at
once (no added delay). Each sender still gets its own result, and its ack only
after the commit that made its message durable.
"""

import asyncio
import weakref

import structlog
from channels.db import database_sync_to_async

from videochat.errors import AppError

from . import services

log = structlog.get_logger(__name__)

BATCH_MAX = 200


class _Writer:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[services.NewMessage, asyncio.Future]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def submit(self, item: services.NewMessage) -> services.Created:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((item, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.run())
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH_MAX and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                results = await database_sync_to_async(services.messages_create)(
                    items=[item for item, _ in batch]
                )
            except Exception as exc:  # noqa: BLE001
                # Nothing was committed: every sender gets the error (no ack),
                # and its client resends the same client_id later.
                log.warning("chat.write_failed", error=repr(exc), batch=len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the sender went away meanwhile
                    continue
                if isinstance(result, AppError):
                    future.set_exception(result)
                else:
                    future.set_result(result)


_writers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer]" = (
    weakref.WeakKeyDictionary()
)


async def message_submit(
    *, room_id: int, author_id: int, body: object, client_id: object
) -> services.Created:
    """message_create through this process's group-commit queue."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _Writer()
    return await writer.submit(
        services.NewMessage(room_id=room_id, author_id=author_id, body=body, client_id=client_id)
    )
