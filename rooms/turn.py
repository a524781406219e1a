"""ICE servers for the call: STUN, and TURN with time-limited credentials.

coturn's shared-secret REST scheme (``--use-auth-secret``): the username is
``<unix expiry>:<user>`` and the password is base64(HMAC-SHA1(secret,
username)). coturn recomputes it, so nothing is stored, and a leaked
credential dies at its expiry. The client asks for fresh ones with
``turn.refresh`` before they expire (docs/protocol.md).
"""

import base64
import hashlib
import hmac
import time
from typing import TypedDict

from django.conf import settings


class IceServer(TypedDict, total=False):
    urls: list[str]
    username: str
    credential: str


class IceConfig(TypedDict):
    ice_servers: list[IceServer]
    ice_transport_policy: str  # "all" or "relay" (RTCIceTransportPolicy)
    expires_at: int | None  # unix seconds; None when there is no TURN


def turn_password(*, secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_config_for(*, user_key: str, now: float | None = None) -> IceConfig:
    """ICE servers for one user; TURN credentials valid for ``TURN_TTL`` seconds."""
    servers: list[IceServer] = []
    if settings.STUN_URLS:
        servers.append(IceServer(urls=list(settings.STUN_URLS)))
    expires_at = None
    if settings.TURN_URLS:
        expires_at = int(now if now is not None else time.time()) + settings.TURN_TTL
        # The user part is for coturn's logs and quotas; a colon would split it.
        username = f"{expires_at}:{user_key.replace(':', '_')}"
        servers.append(
            IceServer(
                urls=list(settings.TURN_URLS),
                username=username,
                credential=turn_password(secret=settings.TURN_SECRET, username=username),
            )
        )
    return IceConfig(
        ice_servers=servers,
        ice_transport_policy="relay" if settings.ICE_RELAY_ONLY else "all",
        expires_at=expires_at,
    )
