"""The room socket's wire protocol: names, close codes and the handler registry.

Client frames are JSON objects with a dotted ``type`` (``chat.send``,
``signal.offer``). Each type has one handler, registered here by the module
that owns it (rooms.handlers, messaging.handlers, ...), so the consumer stays
a thin edge. See docs/protocol.md.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videochat.ratelimit import Limit

    from .consumers import RoomConsumer

PROTOCOL_VERSION = 1


class CloseCode:
    """WebSocket close codes the server uses (4000-4999 are ours)."""

    BAD_HANDSHAKE = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    NO_SUCH_ROOM = 4404
    HANDSHAKE_TIMEOUT = 4408
    ROOM_FULL = 4409
    # This socket no longer serves a session (its peer was reaped for missing
    # heartbeats, or its login session was replaced): reconnect afresh.
    GONE = 4410
    KICKED = 4001
    BANNED = 4003
    REPLACED = 4005
    # A fault of the server's while handling a frame (error `internal` first): the
    # peer is held for its resume. Not 1011: that is a crash to every proxy and log.
    INTERNAL = 4500
    # The server is draining (a node leaving the pool): reconnect now, elsewhere.
    DRAINING = 4503


Frame = dict[str, Any]
Handler = Callable[["RoomConsumer", Frame], Awaitable[None]]

HANDLERS: dict[str, Handler] = {}
# A type's own rate limit (per user), checked once the frame is parsed, before
# the handler runs (rooms.security.check_frame); the address and user buckets
# were charged before parsing (rooms.security.AddressGate).
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


def room_group_name(room_id: int) -> str:
    """The channel-layer group of a room; built only from its validated id."""
    return f"room.{int(room_id)}"


def peer_group_name(room_id: int, peer_id: str) -> str:
    """A group holding one peer's current channel, so it can be reached after resume."""
    if not peer_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError("bad peer id")
    return f"peer.{int(room_id)}.{peer_id}"


def member_group_name(member_id: int) -> str:
    """Every socket of one membership (all its tabs): kick, ban and role changes reach it."""
    return f"member.{int(member_id)}"


def user_group_name(user_id: int) -> str:
    """Every room socket of one account, in any room: logout closes them."""
    return f"user.{int(user_id)}"
