"""Chat error codes (documented in docs/protocol.md, Errors)."""

from videochat.errors import AppError


class EmptyBody(AppError):
    code = "empty_body"
    message = "The message is empty."


class BodyTooLong(AppError):
    code = "body_too_long"
    message = "The message is too long."


class BadSeq(AppError):
    code = "bad_seq"
    message = "That sequence number is beyond the newest message."
