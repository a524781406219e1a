"""Every WebSocket close code the server sends, in one place (docs/protocol.md, Close codes).

4000-4999 are ours. A code says what the client should do next: reconnect and
resume, reconnect later, ask for something (a password), or stop.
"""


class CloseCode:
    # Sent by the browser when the user left on purpose (leave button, tab
    # closed, navigation): no resume grace, the others see the leave at once.
    NORMAL = 1000
    GOING_AWAY = 1001

    KICKED = 4001
    BANNED = 4003
    REPLACED = 4005
    BAD_HANDSHAKE = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    NO_SUCH_ROOM = 4404
    HANDSHAKE_TIMEOUT = 4408
    ROOM_FULL = 4409
    # This socket no longer serves a session (its peer was reaped for missing
    # heartbeats, or its login session was replaced): reconnect afresh.
    GONE = 4410
    # The room is locked: the client reconnects with backoff and gets in once unlocked.
    ROOM_LOCKED = 4423
    # The room needs a password: the page asks for it, then reconnects.
    PASSWORD_REQUIRED = 4424
    # Too many sockets or frames from one address: come back after retry_after.
    TOO_MANY = 4429
    # A fault of the server's while handling a frame (error `internal` first): the
    # peer is held for its resume. Not 1011: that is a crash to every proxy and log.
    INTERNAL = 4500
    # The server is draining (a node leaving the pool): reconnect now, elsewhere.
    DRAINING = 4503


DELIBERATE = frozenset({CloseCode.NORMAL, CloseCode.GOING_AWAY})
