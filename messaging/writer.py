"""Group commit for chat sends: one transaction for the sends that arrive together.

Every chat.send in this server process goes through one queue per event
loop. While a batch is being written (in the database thread), new sends
queue up and become the next batch, so under load many messages share one
commit (one fsync) and one thread hop, and when idle a send is written at
once (no added delay). Each sender still gets its own result, and its ack only
after the commit that made its message durable.

After the commit the batch's new messages are published as wake-ups, one
frame per room per batch (messaging.fanout), in seq order: batches are
written and published one after the other. Under load a batch holds several
messages of a room, so each socket gets one frame for them instead of one
per message; when idle a batch is one message and nothing waits.
"""

import asyncio
import contextvars

import structlog
from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from videochat import metrics
from videochat.loops import per_loop

from . import fanout, services

log = structlog.get_logger(__name__)

BATCH_MAX = 200


class _Writer:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[services.NewMessage, asyncio.Future]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def enqueue(self, item: services.NewMessage) -> asyncio.Future:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        future.add_done_callback(metrics.chat_send_timer())
        self.queue.put_nowait((item, future))
        if self.task is None or self.task.done():
            # A context of its own: the socket that happened to start the writer
            # must not lend its log ids (session, room, peer) to every batch.
            self.task = asyncio.create_task(self.run(), context=contextvars.Context())
        return future

    async def write(
        self, batch: list[tuple[services.NewMessage, asyncio.Future]]
    ) -> list[services.Created | Exception]:
        """One result per item: Created, its AppError, or the exception that failed it."""
        items = [item for item, _ in batch]
        try:
            return list(await database_sync_to_async(services.messages_create)(items=items))
        except (OperationalError, InterfaceError) as exc:
            metrics.store_error("database", exc)
            # The database is unreachable or busy: nothing was committed, and
            # writing the items one by one would only fail N times. Every
            # sender gets the error (no ack); its client resends later.
            log.warning("chat.write_failed", error=repr(exc), batch=len(batch))
            return [exc] * len(batch)
        except Exception as exc:  # noqa: BLE001
            if len(batch) == 1:
                log.warning("chat.write_failed", error=repr(exc), batch=1)
                return [exc]
            # One item's content can fail the whole statement (text validation
            # should refuse it first): write each alone so it fails by itself
            # instead of failing everyone else's sends, in every room.
            log.warning("chat.batch_failed_writing_alone", error=repr(exc), batch=len(batch))
            results: list[services.Created | Exception] = []
            for item in items:
                try:
                    results.append(
                        await database_sync_to_async(services.message_create_alone)(item=item)
                    )
                except Exception as item_exc:  # noqa: BLE001
                    results.append(item_exc)
            return results

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH_MAX and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            results = await self.write(batch)
            wakeups: dict[int, list[services.MessageDict]] = {}
            for (item, future), result in zip(batch, results, strict=True):
                if not isinstance(result, BaseException) and result["created"]:
                    wakeups.setdefault(item["room_id"], []).append(result["message"])
                if future.done():  # the sender went away meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if wakeups:
                # Awaited before the next batch: publishes stay in seq order,
                # and sends arriving meanwhile make the next batch larger
                # (measured: publishing beside the next write made batches
                # smaller and the process, GIL-bound, slower).
                try:
                    await fanout.rooms_publish(wakeups)
                except Exception as exc:  # noqa: BLE001
                    # Committed and acknowledged; receivers repair a lost
                    # wake-up with their next sync.
                    log.warning("chat.broadcast_failed", error=repr(exc), rooms=list(wakeups))


_writer = per_loop(_Writer)


def message_enqueue(
    *, room_id: int, author_id: int, body: object, client_id: object
) -> "asyncio.Future[services.Created]":
    """Queue a message_create for this process's next group commit.

    Returns at once with a future for the result (or the AppError); sends
    queued one after the other get seqs in that order.
    """
    return _writer().enqueue(
        services.NewMessage(room_id=room_id, author_id=author_id, body=body, client_id=client_id)
    )
