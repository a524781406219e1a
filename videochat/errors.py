"""One error hierarchy: a stable code, a human message and extra data.

Views turn these into form errors, consumers into ``{"type": "error", ...}``
frames, commands into a message and a non-zero exit. Codes are documented in
docs/protocol.md and never change meaning.
"""

from typing import Any


class AppError(Exception):
    code = "error"
    message = "Something went wrong."

    def __init__(self, message: str | None = None, **data: Any) -> None:
        self.message = message or self.message
        self.data = data
        super().__init__(self.message)

    def as_frame(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message, **self.data}


class BadRequest(AppError):
    code = "bad_request"
    message = "The request is malformed."


class NotFound(AppError):
    code = "not_found"
    message = "Not found."


class Forbidden(AppError):
    code = "forbidden"
    message = "You may not do that."


class Conflict(AppError):
    code = "conflict"
    message = "That conflicts with the current state."


class RateLimited(AppError):
    code = "rate_limited"
    message = "Too many requests; slow down."

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message, retry_after=round(retry_after, 3))


class Unavailable(AppError):
    code = "unavailable"
    message = "Temporarily unavailable; try again shortly."

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message, retry_after=round(retry_after, 3))


class InviteInvalid(AppError):
    code = "invite_invalid"
    message = "This invite link is invalid, expired or revoked."


class RoomFull(AppError):
    code = "room_full"
    message = "The room is full."


class NotInCall(AppError):
    code = "not_in_call"
    message = "Join the call first."
