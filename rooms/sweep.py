"""The periodic re-check of this process's open room sockets, as one sweep.

Every ready socket is re-checked about every ``SOCKET_CHECK_INTERVAL_S``
(security.sockets_recheck: reaped, resumed elsewhere, banned, password
changed, in case the faster notice was lost). This used to be a sleeping task
and a Redis round trip per socket: at 5,000 idle sockets 500 wake-ups and 500
pipelines a second, which with the browsers' pings kept a process CPU-bound
short of 5,000 sockets (bench/RESULTS.md, "Capacity of one process").

Now one task per event loop wakes ``SLOTS`` times per interval and re-checks
one slot of the sockets (each socket joins the emptiest slot) in one Redis round
trip, so the load is spread evenly over the interval and does not grow with a
wake-up per socket.
"""

from __future__ import annotations

import asyncio

import structlog
from django.conf import settings

from . import security
from .session import Session

SLOTS = 10

log = structlog.get_logger(__name__)


class _Sweep:
    def __init__(self) -> None:
        self.slots: list[set[Session]] = [set() for _ in range(SLOTS)]
        self.slot_of: dict[Session, int] = {}
        self.task: asyncio.Task | None = None

    def add(self, session: Session) -> None:
        if session in self.slot_of:
            return
        slot = min(range(SLOTS), key=lambda k: len(self.slots[k]))
        self.slots[slot].add(session)
        self.slot_of[session] = slot
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def discard(self, session: Session) -> None:
        slot = self.slot_of.pop(session, None)
        if slot is not None:
            self.slots[slot].discard(session)

    async def run(self) -> None:
        slot = 0
        while self.slot_of:
            await asyncio.sleep(settings.SOCKET_CHECK_INTERVAL_S / SLOTS)
            due = [s for s in self.slots[slot] if s.ready]
            slot = (slot + 1) % SLOTS
            if not due:
                continue
            try:
                await security.sockets_recheck(due)
            except Exception:  # noqa: BLE001 - Redis or the database away: next time
                log.warning("room.recheck_failed", sockets=len(due), exc_info=True)


# One sweep per event loop (the tests run a loop per test; daphne one per process).
_sweeps: dict[asyncio.AbstractEventLoop, _Sweep] = {}


def _sweep() -> _Sweep:
    loop = asyncio.get_running_loop()
    sweep = _sweeps.get(loop)
    if sweep is None:
        for old in [lp for lp in _sweeps if lp.is_closed()]:
            del _sweeps[old]
        sweep = _sweeps[loop] = _Sweep()
    return sweep


def watch(session: Session) -> None:
    """Re-check this ready socket every interval until ``unwatch``."""
    _sweep().add(session)


def unwatch(session: Session) -> None:
    sweep = _sweeps.get(asyncio.get_running_loop())
    if sweep is not None:
        sweep.discard(session)


def watched() -> int:
    """Sockets this event loop's sweep re-checks (for tests and the bench)."""
    sweep = _sweeps.get(asyncio.get_running_loop())
    return len(sweep.slot_of) if sweep else 0
