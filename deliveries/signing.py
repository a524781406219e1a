"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" (Stripe's scheme).

Receivers recompute the HMAC with their secret, compare in constant time and
refuse timestamps older than a few minutes (replays).
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Huddle-Signature"
TIMESTAMP_HEADER = "X-Huddle-Timestamp"
DELIVERY_HEADER = "X-Huddle-Delivery"
EVENT_HEADER = "X-Huddle-Event"


def signature_compute(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signature_verify(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: True only for a fresh, correctly signed body."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    expected = signature_compute(secret=secret, timestamp=ts, body=body)
    return hmac.compare_digest(expected, signature)
