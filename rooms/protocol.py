"""The room socket's wire protocol: its version and the handler registry.

Client frames are JSON objects with a dotted ``type`` (``chat.send``,
``signal.offer``). Each type has one handler, registered here by the module
that owns it (rooms.handlers, messaging.handlers, ...), so the consumer stays
a thin edge. See docs/protocol.md.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videochat.ratelimit import Limit

    from .session import Session

PROTOCOL_VERSION = 1


Frame = dict[str, Any]
Handler = Callable[["Session", Frame], Awaitable[None]]

HANDLERS: dict[str, Handler] = {}
# A type's own rate limit (per user), charged before the handler runs in the
# same Redis round trip as the frame's address and user buckets
# (rooms.security.AddressGate.charge), only when those were.
HANDLER_LIMITS: dict[str, "Limit"] = {}


def handles(type_name: str, *, limit: "Limit | None" = None) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if type_name in HANDLERS:
            raise RuntimeError(f"two handlers for {type_name!r}")
        HANDLERS[type_name] = fn
        if limit is not None:
            HANDLER_LIMITS[type_name] = limit
        return fn

    return register
