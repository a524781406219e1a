"""How each kind of delivery is sent, and which failures are worth retrying."""

import http.client
import json
import smtplib
import socket
import threading
import time
from typing import Any, Protocol, TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail

from . import signing
from .urlsafety import UnsafeURL, url_addresses

RESPONSE_READ_LIMIT = 64 * 1024
# Worth another try: the receiver is overloaded, down or slow.
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class SendError(Exception):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        counts_against_target: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        # A 4xx says the target is up (our request is wrong): it must not trip the breaker.
        self.counts_against_target = (
            retryable if counts_against_target is None else counts_against_target
        )


class SendResult(TypedDict, total=False):
    status_code: int


class Sender(Protocol):
    def breaker_target(self, *, target: str, payload: dict[str, Any]) -> str: ...

    def send(self, *, delivery_id: str, target: str, payload: dict[str, Any]) -> SendResult: ...


def webhook_body(*, delivery_id: str, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": delivery_id,
            "event": payload["event"],
            "room_id": payload["room_id"],
            "created_at": payload["created_at"],
            "data": payload["data"],
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class _CheckedHTTPConnection(http.client.HTTPConnection):
    """Connects to addresses already checked (urlsafety.url_addresses), never
    to a fresh lookup of the name: between check and connect, DNS could
    answer with a private address (rebinding). Host header, TLS SNI and
    certificate checks still use the name."""

    # Set after construction: HTTPSConnection's __init__ passes its own
    # arguments along the MRO, so this class adds none.
    addresses: tuple[str, ...] = ()

    def connect(self) -> None:
        error: OSError = OSError(f"no checked address for {self.host}")
        for address in self.addresses:
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
            except OSError as exc:
                error = exc
                continue
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return
        raise error


class _CheckedHTTPSConnection(http.client.HTTPSConnection, _CheckedHTTPConnection):
    # HTTPSConnection.connect wraps what super().connect() opened: ours.
    pass


# Keep-alive connections per worker thread: a busy receiver is called again
# and again, and a fresh TCP (and TLS) handshake per delivery is most of the cost.
_local = threading.local()
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def _connection(
    scheme: str, host: str, port: int | None, addresses: tuple[str, ...], *, fresh: bool
):
    """(pool key, connection, whether it was reused from the pool, the pool)."""
    pool: dict = _local.__dict__.setdefault("pool", {})
    # The addresses are part of the key: a name that now resolves elsewhere
    # gets a new connection to its newly checked addresses.
    key = (scheme, host, port, addresses)
    conn = pool.pop(key, None)
    if conn is not None and fresh:
        conn.close()
        conn = None
    if conn is not None:
        return key, conn, True, pool
    cls = _CheckedHTTPSConnection if scheme == "https" else _CheckedHTTPConnection
    conn = cls(host, port, timeout=settings.DELIVERY_HTTP_TIMEOUT_S)
    conn.addresses = addresses
    return key, conn, False, pool


def _post(
    scheme: str,
    host: str,
    port: int | None,
    addresses: tuple[str, ...],
    path: str,
    body: bytes,
    headers: dict,
) -> int:
    for fresh in (False, True):
        key, conn, reused, pool = _connection(scheme, host, port, addresses, fresh=fresh)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(RESPONSE_READ_LIMIT + 1)
        except _STALE:
            conn.close()
            if reused and not fresh:
                # The receiver closed an idle keep-alive connection: not a failed
                # attempt, just try once more on a new connection.
                continue
            raise
        except BaseException:
            conn.close()
            raise
        if response.will_close or len(data) > RESPONSE_READ_LIMIT:
            conn.close()
        else:
            pool[key] = conn
        return response.status
    raise AssertionError("unreachable")


class WebhookSender:
    def breaker_target(self, *, target: str, payload: dict[str, Any]) -> str:
        parts = urlsplit(target)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"http:{parts.hostname}:{port}"

    def send(self, *, delivery_id: str, target: str, payload: dict[str, Any]) -> SendResult:
        from .models import Webhook

        # Read on every attempt: a paused or deleted webhook stops at once.
        # order_by(): Meta.ordering would join rooms for nothing on this hot path.
        row = (
            Webhook.objects.filter(pk=payload["webhook_id"])
            .order_by()
            .values_list("url", "secret", "active")[:1]
        )
        url, secret, active = row[0] if row else (None, None, False)
        if not active or secret is None:
            raise SendError("the webhook was deleted or deactivated", retryable=False)
        # The owner may have changed the URL since the event; never call a URL
        # other than the one this delivery (and its breaker) is about.
        if url != target:
            raise SendError("the webhook URL changed since the event", retryable=False)
        try:
            addresses = url_addresses(url=target, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
        except UnsafeURL as exc:
            raise SendError(exc.message, retryable=False) from exc
        body = webhook_body(delivery_id=delivery_id, payload=payload)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Huddle-Webhooks/1",
            signing.DELIVERY_HEADER: delivery_id,
            signing.EVENT_HEADER: payload["event"],
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.signature_compute(
                secret=secret, timestamp=timestamp, body=body
            ),
        }
        parts = urlsplit(target)
        if not parts.hostname:  # url_check refuses these; the type says it may be None
            raise SendError("the webhook URL has no host", retryable=False)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            status = _post(
                parts.scheme, parts.hostname, parts.port, tuple(addresses), path, body, headers
            )
        except (OSError, http.client.HTTPException) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}"[:300], retryable=True) from exc
        if 200 <= status < 300:
            return SendResult(status_code=status)
        # Redirects are not followed (they could lead into a private network).
        raise SendError(f"HTTP {status}", retryable=status in RETRYABLE_STATUS, status_code=status)


class EmailSender:
    def breaker_target(self, *, target: str, payload: dict[str, Any]) -> str:
        # The mail server is the shared thing that fails, not the recipient.
        return f"email:{getattr(settings, 'EMAIL_HOST', 'localhost')}"

    def send(self, *, delivery_id: str, target: str, payload: dict[str, Any]) -> SendResult:
        try:
            send_mail(
                subject=payload["subject"],
                message=payload["body"],
                from_email=None,
                recipient_list=[target],
                fail_silently=False,
            )
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"recipient refused: {exc}"[:300], retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}"[:300], retryable=True) from exc
        return SendResult()


SENDERS: dict[str, Sender] = {"webhook": WebhookSender(), "email": EmailSender()}
