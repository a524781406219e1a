"""The room socket: one per browser tab in a room, carrying calls and chat.

A thin edge: it authenticates at connect, holds the handshake, decodes frames,
enforces size and rate limits, and dispatches each frame type to the handler
registered for it in ``rooms.protocol.HANDLERS``. Errors become error frames
and the socket stays open.
"""

import asyncio
import json
import secrets
from collections.abc import Coroutine
from typing import Any

import structlog
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from videochat import metrics, node, requestid
from videochat.errors import AppError, BadRequest, RoomFull

from . import admission, events, presence, resume, security, selectors, turn
from .protocol import HANDLERS, PROTOCOL_VERSION, CloseCode, room_group_name

log = structlog.get_logger(__name__)

HANDSHAKE_TIMEOUT_S = 10
# Close codes a browser sends when the user left on purpose (leave button,
# tab closed, navigation): no resume grace, the others see the leave at once.
DELIBERATE_CLOSE_CODES = {1000, 1001}
# Grace-period reapers must outlive the consumer that started them.
_reapers: set[asyncio.Task] = set()


class UnknownType(AppError):
    code = "unknown_type"
    message = "Unknown message type."


class NotReady(AppError):
    code = "not_ready"
    message = "Send hello first."


class TooLarge(AppError):
    code = "too_large"
    message = "The frame is too large."


class BadJson(AppError):
    code = "bad_json"
    message = "The frame is not a JSON object."


class RoomConsumer(AsyncJsonWebsocketConsumer):
    room: selectors.RoomInfo
    member: selectors.MemberInfo
    peer_id: str = ""
    ready = False
    # Set when the server itself closed the socket (kick, ban, replaced).
    server_close_code: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beside: set[asyncio.Task] = set()

    # --- connection -------------------------------------------------------
    async def connect(self) -> None:
        requestid.socket_session_bind()
        if node.draining():
            # Accepted first so the client reads the code (a close before accept is a 403).
            await self.accept()
            await self.close(code=CloseCode.DRAINING)
            return
        # Per-address connection rate, before any database work.
        if not await security.connection_allowed(self):
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        user = self.scope.get("user")
        access = await database_sync_to_async(selectors.socket_access)(
            slug=slug, user=user, session=self.scope.get("session")
        )
        if access["room"] is None:
            await self.close(code=CloseCode.NO_SUCH_ROOM)
            return
        if access["member"] is None:
            anonymous = user is None or not user.is_authenticated
            await self.close(code=CloseCode.UNAUTHENTICATED if anonymous else CloseCode.FORBIDDEN)
            return
        self.room = access["room"]
        self.member = access["member"]
        self.group = room_group_name(self.room["id"])
        self.log = log.bind(room=self.room["slug"], member=self.member["id"])
        requestid.socket_bind(room=self.room["slug"], member=self.member["id"])
        await self.accept()
        node.socket_opened(self.drain)
        # Kick, ban, role changes and logout reach this socket through these groups.
        await security.socket_opened(self)
        self.handshake_timer = asyncio.create_task(self._expect_hello())

    async def take_seat(self) -> presence.PeerState | None:
        """Enter the call: this peer takes one of the room's call seats.

        Returns the peer's state, now in the call (None if the peer is gone),
        or raises ``RoomFull``. A seat is for the call, not the socket: a tab
        that previews or chats holds none; a member's second tab entering the
        call takes the first one's seat, whose call ends (its chat stays);
        owners and moderators always get a seat.

        Seats of peers that went away without a goodbye (a server killed
        mid-call, a close that failed under load) are freed by anyone's
        heartbeat; in a full room nobody may be left to send one, so a
        refused seat first drops the stale peers and tries once more.
        """
        room_id, capacity = self.room["id"], self.room["capacity"]
        always = self.member["role"] in admission.MODERATING_ROLES

        def take() -> Coroutine[Any, Any, presence.SeatTaken | None]:
            return presence.seat_take(
                room_id=room_id, peer_id=self.peer_id, capacity=capacity, always=always
            )

        try:
            taken = await take()
            if taken is None:
                await events.reap_and_announce(self)
                taken = await take()
        except presence.PeerGone:
            return None
        if taken is None:
            raise RoomFull(capacity=capacity)
        if taken["replaced"] is not None:
            await events.announce_call_moved(self, taken["replaced"])
        return taken["state"]

    async def _expect_hello(self) -> None:
        await asyncio.sleep(HANDSHAKE_TIMEOUT_S)
        if not self.ready:
            await self.close(code=CloseCode.HANDSHAKE_TIMEOUT)

    async def drain(self) -> None:
        """This process is leaving the pool: the client reconnects elsewhere and resumes."""
        await self.close(code=CloseCode.DRAINING)

    async def disconnect(self, code: int) -> None:
        node.socket_closed(self.drain)
        timer = getattr(self, "handshake_timer", None)
        if timer:
            timer.cancel()
        await security.socket_closed(self)
        if not self.ready:
            return
        server_code = self.server_close_code
        if server_code == CloseCode.REPLACED:
            # A resumed socket owns the peer now; nothing to undo.
            self.ready = False
            await self.channel_layer.group_discard(self.group, self.channel_name)
        elif server_code == CloseCode.DRAINING:
            await self.start_grace()  # held for its resume on another node
        elif code in DELIBERATE_CLOSE_CODES or server_code is not None:
            reason: dict[int | None, str] = {CloseCode.KICKED: "kicked", CloseCode.BANNED: "banned"}
            await self.leave_room(reason=reason.get(server_code, "disconnect"))
        else:
            await self.start_grace()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.server_close_code is None and isinstance(code, int) and code is not True:
            self.server_close_code = code
        await super().close(code=code, reason=reason)

    # --- frames -----------------------------------------------------------
    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first runs close_old_connections in the
        # database thread: one thread hop per frame and per channel-layer
        # event, queued behind whatever that thread is writing (a chat group
        # commit), so every socket's frames waited for the commit in progress.
        # Every database call here goes through database_sync_to_async, which
        # already closes stale connections around each call.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        ref = None
        try:
            if text_data is None:
                raise BadJson("Binary frames are not accepted.")
            if len(text_data) > settings.WS_MAX_MESSAGE_BYTES:
                raise TooLarge(limit=settings.WS_MAX_MESSAGE_BYTES)
            try:
                frame = json.loads(text_data)
            except ValueError as exc:
                raise BadJson() from exc
            if not isinstance(frame, dict):
                raise BadJson()
            metrics.frame_in(frame.get("type"))
            ref = frame.get("ref") if isinstance(frame.get("ref"), (str, int)) else None
            # Per-type size, per-address rate, and the sender's current role and bans.
            if not await security.check_frame(self, frame, size=len(text_data)):
                return
            await self.dispatch_frame(frame)
        except AppError as exc:
            await self.send_error(exc, ref=ref)

    async def dispatch_frame(self, frame: dict[str, Any]) -> None:
        frame_type = frame.get("type")
        if not isinstance(frame_type, str):
            raise BadRequest("Every frame needs a string 'type'.")
        if frame_type == "hello":
            await self.hello(frame)
            return
        if not self.ready:
            raise NotReady()
        handler = HANDLERS.get(frame_type)
        if handler is None:
            raise UnknownType(frame_type=frame_type[:64])
        # Rate limits were spent in security.check_frame (one round trip).
        await handler(self, frame)

    async def hello(self, frame: dict[str, Any]) -> None:
        if self.ready:
            raise BadRequest("Already said hello.")
        if frame.get("v") != PROTOCOL_VERSION:
            await self.send_json(
                BadRequest("Unsupported protocol version.", supported=[PROTOCOL_VERSION]).as_frame()
            )
            await self.close(code=CloseCode.BAD_HANDSHAKE)
            return
        try:
            await admission.admit(self, frame)
        except admission.Waiting:
            return  # parked in the lobby; a moderator's decision arrives as mod.event
        except AppError as exc:
            await self.send_json(exc.as_frame())
            await self.close(code=getattr(exc, "close_code", CloseCode.FORBIDDEN))
            return
        resumed = await resume.session_resume(self, frame.get("resume"))
        if resumed is not None:
            await self.join_resumed(resumed)
            return
        self.peer_id = secrets.token_urlsafe(9)
        requestid.socket_bind(peer=self.peer_id)
        state = presence.PeerState(
            peer_id=self.peer_id,
            member_id=self.member["id"],
            display_name=self.member["display_name"],
            role=self.member["role"],
            audio=bool(frame.get("audio", True)),
            video=bool(frame.get("video", True)),
            screen=False,
            in_call=False,  # until it has a seat
        )
        await presence.presence_add(room_id=self.room["id"], state=state)
        await presence.presence_bind(
            room_id=self.room["id"], peer_id=self.peer_id, channel=self.channel_name
        )
        no_seat = None
        if frame.get("in_call") is True:
            # Back in the call (a reconnect that could not resume): a full
            # call still lets the tab in for chat; it is told after welcome.
            try:
                state = await self.take_seat() or state
            except RoomFull as exc:
                no_seat = exc
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.ready = True
        self.handshake_timer.cancel()
        await self.send_welcome(resumed=False)
        await events.announce_join(self, state)
        if no_seat is not None:
            await self.send_error(no_seat)
        self.log.info("room.joined", peer=self.peer_id)

    async def join_resumed(self, state: presence.PeerState) -> None:
        """Same peer, new socket: no join for the others; held signals are delivered."""
        self.peer_id = state["peer_id"]
        requestid.socket_bind(peer=self.peer_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.ready = True
        self.handshake_timer.cancel()
        await self.send_welcome(resumed=True)
        for held in await presence.pending_take(room_id=self.room["id"], peer_id=self.peer_id):
            await self.send_json(held)
        self.log.info("room.resumed", peer=self.peer_id)

    async def send_welcome(self, *, resumed: bool) -> None:
        room_id = self.room["id"]
        await self.send_json(
            {
                "type": "welcome",
                "v": PROTOCOL_VERSION,
                "peer_id": self.peer_id,
                "member": self.member,
                "room": self.room,
                "participants": await presence.presence_list(room_id=room_id),
                "resumed": resumed,
                "resume": {
                    "token": resume.resume_token(
                        room_id=room_id, peer_id=self.peer_id, member_id=self.member["id"]
                    ),
                    "grace_s": settings.CALL_RESUME_GRACE_S,
                },
                "ice": turn.ice_config_for(user_key=self.rate_key),
            }
        )

    async def start_grace(self) -> None:
        """The socket dropped without a goodbye: hold the peer for a resume."""
        self.ready = False
        await self.channel_layer.group_discard(self.group, self.channel_name)
        grace = settings.CALL_RESUME_GRACE_S
        started = await presence.presence_unbind(
            room_id=self.room["id"],
            peer_id=self.peer_id,
            channel=self.channel_name,
            grace_s=grace,
            timeout_s=presence.PRESENCE_TIMEOUT_S,
        )
        if started:
            task = asyncio.create_task(self._reap_after(grace + 0.5))
            _reapers.add(task)
            task.add_done_callback(_reapers.discard)
        self.log.info("room.grace", peer=self.peer_id, started=started)

    async def _reap_after(self, delay: float) -> None:
        # Every peer's ping also reaps; this covers a room where nobody else is.
        await asyncio.sleep(delay)
        await events.reap_and_announce(self)

    async def leave_room(self, *, reason: str) -> None:
        self.ready = False
        await self.channel_layer.group_discard(self.group, self.channel_name)
        owner = await presence.presence_channel(room_id=self.room["id"], peer_id=self.peer_id)
        if owner not in (None, self.channel_name):
            return  # a newer socket resumed this peer
        state = await presence.presence_get(room_id=self.room["id"], peer_id=self.peer_id)
        if await presence.presence_remove(room_id=self.room["id"], peer_id=self.peer_id):
            await events.announce_leave(self, state, peer_id=self.peer_id, reason=reason)
        self.log.info("room.left", peer=self.peer_id, reason=reason)

    # --- work beside the frame loop ----------------------------------------
    async def run_beside(self, coro: Any, *, window: int) -> None:
        """Run ``coro`` as a task so the next frame need not wait for it.

        At most ``window`` such tasks per socket: beyond that, this waits for
        one to finish (the socket stops reading, TCP pushes back). Tasks that
        outlive the socket finish on their own; what they send is dropped.
        """
        while len(self.beside) >= window:
            await asyncio.wait(self.beside, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(coro)
        self.beside.add(task)
        task.add_done_callback(self.beside.discard)

    # --- sending ----------------------------------------------------------
    @property
    def rate_key(self) -> str:
        user_id = self.member["user_id"]
        return f"u{user_id}" if user_id else f"g{self.member['id']}"

    async def send_error(self, error: AppError, *, ref: Any = None) -> None:
        frame = error.as_frame()
        if ref is not None:
            frame["ref"] = ref
        await self.send_json(frame)

    async def broadcast(self, frame: dict[str, Any], *, exclude_self: bool = False) -> None:
        """Send ``frame`` to everyone in the room (at most once: a wake-up, not a record)."""
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "room.frame",
                "frame": frame,
                "exclude": self.channel_name if exclude_self else None,
            },
        )

    # --- channel-layer events (server to server) ---------------------------
    async def room_frame(self, event: dict[str, Any]) -> None:
        if event.get("exclude") != self.channel_name:
            await self.send_json(event["frame"])

    async def peer_frame(self, event: dict[str, Any]) -> None:
        await self.send_json(event["frame"])

    async def mod_event(self, event: dict[str, Any]) -> None:
        """Moderation news for this socket: lobby decisions, its member's new role."""
        from . import moderation

        await moderation.on_event(self, event)

    async def peer_close(self, event: dict[str, Any]) -> None:
        """Another part of the system asks this socket to go (kick, ban, logout)."""
        if "frame" in event:
            await self.send_json(event["frame"])
        await self.close(code=event.get("code", CloseCode.FORBIDDEN))
