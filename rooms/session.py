"""What a handler knows of the socket it serves: a small value, not the consumer.

The consumer builds one ``Session`` per socket once it knows the room and the
member, and hands it to every handler and socket helper (``handler(session,
frame)``). The session holds the socket's identity (room, member, peer id,
channel name), the per-socket state handlers change (readiness, the
moderation revision last seen, the lobby knock), and the few things a handler
may do to its own socket: reply, fail a frame, close, run work beside the
frame loop. Messages to anyone else go through ``rooms.layer``.

Only rooms/consumers.py knows it is a consumer; nothing writes onto it.
"""

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from videochat.errors import AppError

from . import layer
from .selectors import MemberInfo, RoomInfo

Frame = dict[str, Any]


@dataclass(eq=False)
class Session:
    room: RoomInfo
    member: MemberInfo  # its "role" follows role changes (rooms.security.role_changed)
    channel_name: str
    # The ASGI scope: the client's address and its login session.
    scope: dict[str, Any]
    # When the socket was opened (wall clock): orders resume claims (rooms.resume).
    opened_at: float
    # What the socket can do, given by the consumer.
    send_frame: Callable[[Frame], Awaitable[None]]
    send_text: Callable[[str], Awaitable[None]]
    close_with: Callable[[int], Awaitable[None]]
    beside: Callable[[Coroutine[Any, Any, None], int], Awaitable[None]]

    peer_id: str = ""
    # Past the handshake: in the room, handlers may run.
    ready: bool = False
    # The room's moderation revision this socket last checked its member against.
    mod_revision: str | None = None
    # The account's password revision this socket last checked its session against.
    auth_revision: str | None = None
    # Waiting in the lobby: the knock, and the hello to resume once admitted.
    lobby_knock_id: str | None = None
    lobby_frame: Frame | None = None
    lobby_admitted: bool = False
    # The rate of this socket's call.stats frames (a rooms.telemetry.FrameBucket).
    stats_bucket: Any = None

    @property
    def room_id(self) -> int:
        return self.room["id"]

    @property
    def member_id(self) -> int:
        return self.member["id"]

    @property
    def user_id(self) -> int | None:
        return self.member["user_id"]

    @property
    def role(self) -> str:
        return self.member["role"]

    @property
    def rate_key(self) -> str:
        """The sender's rate-limit key: the account, or the guest membership."""
        return f"u{self.user_id}" if self.user_id else f"g{self.member_id}"

    async def reply(self, frame: Frame) -> None:
        """A frame to this socket only."""
        await self.send_frame(frame)

    async def fail(self, error: AppError, *, ref: Any = None) -> None:
        """An error frame to this socket (it stays open)."""
        frame = error.as_frame()
        if ref is not None:
            frame["ref"] = ref
        await self.send_frame(frame)

    async def close(self, code: int) -> None:
        await self.close_with(code)

    async def broadcast(self, frame: Frame, *, exclude_self: bool = False) -> None:
        """``frame`` to everyone in the room (at most once: a wake-up, not a record)."""
        exclude = self.channel_name if exclude_self else None
        await layer.to_room(self.room_id, frame, exclude=exclude)

    async def run_beside(self, coro: Coroutine[Any, Any, None], *, window: int) -> None:
        """Run ``coro`` beside the frame loop (at most ``window`` at once per socket)."""
        await self.beside(coro, window)
