"""The room socket: one per browser tab in a room, carrying calls and chat.

A thin edge: it authenticates at connect, holds the handshake, decodes frames,
enforces size and rate limits, and dispatches each frame type to the handler
registered for it in ``rooms.protocol.HANDLERS``. Errors become error frames
and the socket stays open; a fault of ours (any other exception) closes it
with 4500 through the normal close path, so its peer is cleaned up.
"""

import asyncio
import json
import secrets
import sys
import time
from typing import Any

import redis
import structlog
from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from videochat import metrics, node, requestid
from videochat.closecodes import DELIBERATE, CloseCode
from videochat.errors import AppError, BadRequest, RoomFull

from . import admission, calls, layer, presence, resume, security, selectors, sweep, turn
from .protocol import HANDLERS, PROTOCOL_VERSION
from .session import Session

log = structlog.get_logger(__name__)

HANDSHAKE_TIMEOUT_S = 10
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


class NotUnicode(BadRequest):
    """A frame holding text that is not Unicode (a lone surrogate): permanent."""

    message = "The frame holds a lone surrogate: text that cannot be stored."
    ref: str | int | None = None


class BadJson(AppError):
    code = "bad_json"
    message = "The frame is not a JSON object."


class InternalError(AppError):
    code = "internal"
    message = "Server error; reconnect."


# Deeper frames are refused before any handler sees them: json.loads raises
# RecursionError near depth 1000, and msgpack (the channel layer) and
# json.dumps fail on a few hundred, so a deep value forwarded to a peer would
# fail far from here. No frame of the protocol nests deeper than a few levels.
MAX_FRAME_DEPTH = 32


def frame_depth_ok(text: str, value: Any) -> bool:
    """False when ``value`` (parsed from ``text``) nests deeper than MAX_FRAME_DEPTH."""
    if text.count("[") + text.count("{") <= MAX_FRAME_DEPTH:
        return True  # cannot be deeper than its brackets, even inside strings
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        if depth > MAX_FRAME_DEPTH:
            return False
        children = item.values() if isinstance(item, dict) else item
        level.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return True


def parse_frame(text: str) -> dict[str, Any]:
    """The frame as a dict, or BadJson (never RecursionError)."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadJson() from exc
    if not isinstance(frame, dict):
        raise BadJson()
    if not frame_depth_ok(text, frame):
        raise BadJson(f"The frame nests deeper than {MAX_FRAME_DEPTH} levels.")
    if "\\u" in text and not _encodable(frame):
        # An escaped lone surrogate ("\ud800") is valid JSON but no Unicode
        # text: it cannot be encoded as UTF-8, so the first Redis key or
        # database write holding it raised deep inside a handler. A browser's
        # JSON.stringify escapes a broken paste this way: the refusal keeps the
        # frame's ref, so the outbox fails that message instead of resending it.
        ref = frame.get("ref")
        refused = NotUnicode()
        if isinstance(ref, int) or (isinstance(ref, str) and _encodable({"ref": ref})):
            refused.ref = ref
        raise refused
    return frame


def decode_frame(text: str | None) -> dict[str, Any]:
    """A text frame within daphne's size bound, parsed (parse_frame), or the AppError to answer."""
    if text is None:
        raise BadJson("Binary frames are not accepted.")
    if len(text) > settings.WS_MAX_MESSAGE_BYTES:
        raise TooLarge(limit=settings.WS_MAX_MESSAGE_BYTES)
    return parse_frame(text)


def _encodable(frame: dict[str, Any]) -> bool:
    try:
        json.dumps(frame, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


class LayerReads:
    """One socket's view of the channel layer: a failed read (Redis away) is a
    ``layer.failed`` message for the consumer, not an exception.

    channels reads the layer beside the client's frames and lets a failed read
    escape the application: daphne then closed the socket with 1011 and never
    reported the close, so disconnect() never ran (no resume grace, a ghost
    peer). After a failure nothing more is read: the socket is closing.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)

    async def receive(self, channel: str) -> dict[str, Any]:
        if self.failed:
            await asyncio.get_running_loop().create_future()  # until cancelled at the end
        try:
            return await self.layer.receive(channel)
        except Exception as exc:  # noqa: BLE001 - any failed read ends this socket alike
            self.failed = True
            return {"type": "layer.failed", "error": repr(exc)}


class RoomConsumer(AsyncJsonWebsocketConsumer):
    """The edge: the only module that knows a socket is a consumer.

    Handlers and helpers get the socket's ``Session`` (rooms/session.py).
    """

    session: Session | None = None
    opened_at = 0.0
    accepted = False
    gate: security.AddressGate
    # Set when the server itself closed the socket (kick, ban, replaced).
    server_close_code: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beside: set[asyncio.Task] = set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_unless_gone(message: dict[str, Any]) -> None:
            # A frame for a socket the client already closed (a room wake-up,
            # a pong) raised out of the handler in daphne (autobahn refuses to
            # send on a closed protocol) before daphne reports the close. The
            # frame is moot; the websocket.disconnect that follows cleans up.
            try:
                await send(message)
            except Disconnected:
                pass

        await super().__call__(scope, receive, send_unless_gone)

    @property
    def channel_layer(self) -> Any:
        return self._channel_layer

    @channel_layer.setter
    def channel_layer(self, layer: Any) -> None:
        # Set by channels' AsyncConsumer.__call__ before it starts reading.
        self._channel_layer = None if layer is None else LayerReads(layer)

    @property
    def ready(self) -> bool:
        return self.session is not None and self.session.ready

    # --- connection -------------------------------------------------------
    async def connect(self) -> None:
        requestid.socket_session_bind()
        if node.draining():
            # This process is leaving the pool: the client goes elsewhere.
            await self.refuse(CloseCode.DRAINING, "draining")
            return
        # Orders this session's sockets for resume (rooms.resume): the newer
        # claim wins. Wall clock, as sockets of one client may reach
        # different servers; their reconnects are far apart beside NTP skew.
        self.opened_at = time.time()
        # Per-address connection rate, before any database work.
        address = admission.client_ip(self.scope)
        refused = await security.connection_refusal(address)
        if refused is not None:
            # Accept first so the client can read why and when to come back.
            await self.accept()
            await self.send_json(refused.as_frame())
            await self.close(code=refused.close_code)
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        user = self.scope.get("user")
        access = await database_sync_to_async(selectors.socket_access)(
            slug=slug, user=user, session=self.scope.get("session")
        )
        room, member = access["room"], access["member"]
        if room is None:
            await self.refuse(CloseCode.NO_SUCH_ROOM, "no such room")
            return
        if member is None:
            if user is None or not user.is_authenticated:
                await self.refuse(CloseCode.UNAUTHENTICATED, "log in first")
            else:
                await self.refuse(CloseCode.FORBIDDEN, "not a member of this room")
            return
        self.session = Session(
            room=room,
            member=member,
            channel_name=self.channel_name,
            scope=self.scope,
            opened_at=self.opened_at,
            send_frame=self.send_json,
            send_text=self._send_text,
            close_with=self._close_with,
            beside=self.run_beside,
        )
        self.log = log.bind(room=room["slug"], member=member["id"])
        self.gate = security.AddressGate(address=address, room_id=room["id"])
        requestid.socket_bind(room=room["slug"], member=member["id"])
        await self.accept()
        node.socket_opened(self.drain)
        # Kick, ban, role changes and logout reach this socket through these groups.
        await security.socket_opened(self.session)
        self.handshake_timer = asyncio.create_task(self._expect_hello())

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        self.accepted = True
        await super().accept(subprotocol=subprotocol, headers=headers)

    async def refuse(self, code: int, reason: str) -> None:
        """Accept, then close with ``code``: the client learns why.

        A close before accept() is an HTTP 403 at the handshake under daphne:
        the browser sees 1006 with no code, and socket.js would reconnect for
        ever instead of saying "not a member" or "log in".
        """
        await self.accept()
        await self.close(code=code, reason=reason)

    async def _expect_hello(self) -> None:
        await asyncio.sleep(HANDSHAKE_TIMEOUT_S)
        if not self.ready:
            await self.close(code=CloseCode.HANDSHAKE_TIMEOUT)

    async def drain(self) -> None:
        """This process is leaving the pool: the client reconnects elsewhere and resumes."""
        await self.close(code=CloseCode.DRAINING)

    async def disconnect(self, code: int) -> None:
        node.socket_closed(self.drain)
        if task := getattr(self, "handshake_timer", None):
            task.cancel()
        session = self.session
        if session is None:
            return  # refused at connect: never joined anything
        sweep.unwatch(session)
        await security.socket_closed(session)
        if not session.ready:
            return
        server_code = self.server_close_code
        if server_code == CloseCode.REPLACED:
            # A resumed socket owns the peer now; nothing to undo.
            session.ready = False
            await layer.group_leave(layer.room_group(session.room_id), self.channel_name)
        elif server_code == CloseCode.DRAINING:
            await self.start_grace(session)  # held for its resume on another node
        elif code in DELIBERATE or server_code not in (None, CloseCode.INTERNAL):
            reason: dict[int | None, str] = {CloseCode.KICKED: "kicked", CloseCode.BANNED: "banned"}
            await calls.peer_leave(session, reason=reason.get(server_code, "disconnect"))
        else:
            await self.start_grace(session)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.server_close_code is None and isinstance(code, int) and code is not True:
            self.server_close_code = code
        await super().close(code=code, reason=reason)

    async def _close_with(self, code: int) -> None:
        await self.close(code=code)

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

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
        try:
            await handler(message)
        except StopConsumer:
            raise
        except Exception:  # noqa: BLE001 - the socket must end through disconnect()
            await self.failed(message)
            if message["type"] == "websocket.disconnect":
                raise StopConsumer() from None

    async def failed(self, message: dict[str, Any]) -> None:
        """A handler raised: log it once and close the socket the normal way.

        Left to escape, the exception ends the application: daphne closes
        with 1011 and never sends websocket.disconnect, so disconnect() never
        runs and the peer stays in presence (a ghost that swallows signals)
        until the heartbeat reaper finds it. Closing here makes daphne report
        the close, and disconnect() starts the resume grace like any drop.
        """
        exc = sys.exc_info()[1]
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            # Redis away: every socket fails the same way at once; one line each, no
            # traceback (each costs the event loop CPU that the other sockets wait for).
            log.warning(
                "room.socket_failed",
                message_type=message.get("type"),
                store="redis",
                error=f"{type(exc).__name__}: {exc}"[:200],
            )
        else:
            log.exception("room.socket_failed", message_type=message.get("type"))
        if message.get("type") == "websocket.disconnect":
            return  # already gone
        await self.close_internal()

    async def layer_failed(self, event: dict[str, Any]) -> None:
        """This socket's channel-layer read failed (Redis away): room news can no
        longer reach it. Closed with 4500 the normal way (the client reconnects
        with backoff and resumes), not 1011 (LayerReads)."""
        log.warning("room.layer_failed", error=event.get("error"))
        await self.close_internal()

    async def close_internal(self) -> None:
        """Error ``internal``, then close 4500: the peer is held for its resume."""
        if self.server_close_code is None:
            try:
                if not self.accepted:
                    # Failed in connect: accepted, the client reads 4500 and
                    # retries with backoff; refused, it would see only 1006.
                    await self.accept()
                await self.send_json(InternalError().as_frame())
                await self.close(code=CloseCode.INTERNAL)
            except Exception:  # noqa: BLE001 - the transport is gone already
                log.warning("room.close_failed", exc_info=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        ref = None
        session = self.session
        try:
            gate = getattr(self, "gate", None)
            if gate is None or session is None:
                return  # refused at connect; a frame raced the close
            if not gate.admits():
                return  # inside a refusal already answered: dropped unparsed
            # Every frame costs its address a token before any handler runs or
            # any error is answered: a flood of invalid frames is limited like
            # valid ones. Parsed first, so its type's own limit (chat.send)
            # rides in the same Redis round trip (one per frame).
            invalid: AppError | None = None
            frame: dict[str, Any] = {}
            try:
                frame = decode_frame(text_data)
            except AppError as exc:
                invalid = exc
            own = None if invalid else security.own_limit(session, frame, size=len(text_data or ""))
            revision, refused = await gate.charge(
                user=session.rate_key if session.ready else None, own=own
            )
            if invalid is not None:
                raise invalid
            metrics.frame_in(frame.get("type"))
            ref = frame.get("ref") if isinstance(frame.get("ref"), (str, int)) else None
            # Per-type size and own limit, and the sender's current role and bans.
            if not await security.check_frame(
                session, frame, size=len(text_data or ""), revision=revision, refused=refused
            ):
                return
            await self.dispatch_frame(session, frame)
        except security.Flooding as exc:
            await self.send_error(exc)
            await self.close(code=exc.close_code)
        except NotUnicode as exc:
            await self.send_error(exc, ref=exc.ref)
        except AppError as exc:
            await self.send_error(exc, ref=ref)

    async def dispatch_frame(self, session: Session, frame: dict[str, Any]) -> None:
        frame_type = frame.get("type")
        if not isinstance(frame_type, str):
            raise BadRequest("Every frame needs a string 'type'.")
        if frame_type == "hello":
            await self.hello(session, frame)
            return
        if not session.ready:
            raise NotReady()
        handler = HANDLERS.get(frame_type)
        if handler is None:
            raise UnknownType(frame_type=frame_type[:64])
        # Rate limits were spent in the frame's charge (AddressGate.charge).
        await handler(session, frame)

    async def hello(self, session: Session, frame: dict[str, Any]) -> None:
        if session.ready:
            raise BadRequest("Already said hello.")
        if frame.get("v") != PROTOCOL_VERSION:
            await self.send_json(
                BadRequest("Unsupported protocol version.", supported=[PROTOCOL_VERSION]).as_frame()
            )
            await self.close(code=CloseCode.BAD_HANDSHAKE)
            return
        try:
            await admission.admit(session, frame)
        except admission.Waiting:
            # Parked in the lobby; a moderator's decision arrives as mod.event.
            # Waiting for a person may take longer than the handshake timeout.
            self.handshake_timer.cancel()
            return
        except AppError as exc:
            await self.send_json(exc.as_frame())
            await self.close(code=getattr(exc, "close_code", CloseCode.FORBIDDEN))
            return
        try:
            resumed = await resume.session_resume(session, frame.get("resume"))
        except resume.Superseded as exc:
            await self.send_json(exc.as_frame())
            await self.close(code=exc.close_code)
            return
        if resumed is not None:
            await self.join_resumed(session, resumed)
            return
        session.peer_id = secrets.token_urlsafe(9)
        requestid.socket_bind(peer=session.peer_id)
        room_id, member = session.room_id, session.member
        state = presence.PeerState(
            peer_id=session.peer_id,
            member_id=member["id"],
            display_name=member["display_name"],
            role=member["role"],
            audio=bool(frame.get("audio", True)),
            video=bool(frame.get("video", True)),
            screen=False,
            in_call=False,  # until it has a seat
            hand_at=None,
        )
        await presence.presence_add(room_id=room_id, state=state)
        await presence.presence_bind(
            room_id=room_id, peer_id=session.peer_id, channel=self.channel_name
        )
        no_seat = None
        if frame.get("in_call") is True:
            # Back in the call (a reconnect that could not resume): a full
            # call still lets the tab in for chat; it is told after welcome.
            try:
                state = await calls.call_enter(session) or state
            except RoomFull as exc:
                no_seat = exc
        await layer.group_join(layer.room_group(room_id), self.channel_name)
        session.ready = True
        self.handshake_timer.cancel()
        await self.send_welcome(session, resumed=False)
        await calls.announce_join(room_id, state, exclude=self.channel_name)
        if no_seat is not None:
            await self.send_error(no_seat)
        self.log.info("room.joined", peer=session.peer_id)

    async def join_resumed(self, session: Session, state: presence.PeerState) -> None:
        """Same peer, new socket: no join for the others; held signals are delivered."""
        session.peer_id = state["peer_id"]
        requestid.socket_bind(peer=session.peer_id)
        await layer.group_join(layer.room_group(session.room_id), self.channel_name)
        session.ready = True
        self.handshake_timer.cancel()
        await self.send_welcome(session, resumed=True)
        for held in await presence.pending_take(room_id=session.room_id, peer_id=session.peer_id):
            await self.send_json(held)
        self.log.info("room.resumed", peer=session.peer_id)

    async def send_welcome(self, session: Session, *, resumed: bool) -> None:
        room_id, peer_id = session.room_id, session.peer_id
        await self.send_json(
            {
                "type": "welcome",
                "v": PROTOCOL_VERSION,
                "peer_id": peer_id,
                "member": session.member,
                "room": session.room,
                "participants": await presence.presence_list(room_id=room_id),
                "resumed": resumed,
                "resume": {
                    "token": resume.resume_token(
                        room_id=room_id, peer_id=peer_id, member_id=session.member_id
                    ),
                    "grace_s": settings.CALL_RESUME_GRACE_S,
                },
                "ice": turn.ice_config_for(user_key=session.rate_key),
            }
        )
        # Re-checked every SOCKET_CHECK_INTERVAL_S until it closes (rooms/sweep.py).
        sweep.watch(session)

    async def start_grace(self, session: Session) -> None:
        """The socket dropped without a goodbye: hold the peer for a resume."""
        session.ready = False
        await layer.group_leave(layer.room_group(session.room_id), self.channel_name)
        grace = settings.CALL_RESUME_GRACE_S
        started = await presence.presence_unbind(
            room_id=session.room_id,
            peer_id=session.peer_id,
            channel=self.channel_name,
            grace_s=grace,
            timeout_s=presence.PRESENCE_TIMEOUT_S,
        )
        if started:
            task = asyncio.create_task(self._reap_after(session.room_id, grace + 0.5))
            _reapers.add(task)
            task.add_done_callback(_reapers.discard)
        self.log.info("room.grace", peer=session.peer_id, started=started)

    @staticmethod
    async def _reap_after(room_id: int, delay: float) -> None:
        # Every peer's ping also reaps; this covers a room where nobody else is.
        await asyncio.sleep(delay)
        await calls.reap_and_announce(room_id)

    # --- work beside the frame loop ----------------------------------------
    async def run_beside(self, coro: Any, window: int) -> None:
        """Run ``coro`` as a task so the next frame need not wait for it.

        At most ``window`` such tasks per socket: beyond that, this waits for
        one to finish (the socket stops reading, TCP pushes back). Tasks that
        outlive the socket finish on their own; what they send is dropped.
        """
        while len(self.beside) >= window:
            await asyncio.wait(self.beside, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self._guarded(coro))
        self.beside.add(task)
        task.add_done_callback(self.beside.discard)

    async def _guarded(self, coro: Any) -> None:
        # A task beside the frame loop fails like a handler: logged once, the
        # socket closed through the normal path (not a stray task traceback).
        try:
            await coro
        except Exception:  # noqa: BLE001
            await self.failed({"type": "beside"})

    # --- sending ----------------------------------------------------------
    async def send_error(self, error: AppError, *, ref: Any = None) -> None:
        frame = error.as_frame()
        if ref is not None:
            frame["ref"] = ref
        await self.send_json(frame)

    # --- channel-layer messages (rooms/layer.py builds them) ----------------
    async def room_frame(self, event: dict[str, Any]) -> None:
        if event.get("exclude") != self.channel_name:
            await self.send_json(event["frame"])

    async def peer_frame(self, event: dict[str, Any]) -> None:
        await self.send_json(event["frame"])

    async def mod_event(self, event: dict[str, Any]) -> None:
        """Moderation news for this socket: lobby decisions, its member's new role."""
        session = self.session
        if session is None:
            return
        if await security.mod_event(session, event) and session.lobby_frame is not None:
            await self.hello(session, session.lobby_frame)  # admitted from the lobby

    async def session_check(self, event: dict[str, Any]) -> None:
        """The account's password changed: is this socket's session still valid?"""
        if self.session is not None:
            await security.session_recheck(self.session)

    async def peer_close(self, event: dict[str, Any]) -> None:
        """Another part of the system asks this socket to go (kick, ban, logout)."""
        if "frame" in event:
            await self.send_json(event["frame"])
        await self.close(code=event.get("code", CloseCode.FORBIDDEN))
