"""WebSocket Origin check: the page's origin must be the socket's own, scheme and port too.

channels' ``AllowedHostsOriginValidator`` compares only the host name with
ALLOWED_HOSTS, so ``http://chat.example.com`` (a page an attacker on the path
can inject into, over plain HTTP) or ``https://chat.example.com:8443``
(another service on the same host) could open a socket carrying the user's
cookies. Here the Origin must equal the origin the socket was requested on:
the scheme (``wss``, or ``https`` when the TLS proxy says so through
``SECURE_PROXY_SSL_HEADER``), the Host header's host and its port, and the
host must be in ALLOWED_HOSTS. ``CSRF_TRUSTED_ORIGINS`` lists further exact
origins (scheme://host[:port]) that may connect. A refusal is a close before
accept: daphne answers the handshake with HTTP 403, like channels' validator.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORT = {"http": 80, "https": 443}


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _request_scheme(scope: dict) -> str:
    if scope.get("scheme") in ("wss", "https"):
        return "https"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        meta_name, secure_value = proxy
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        forwarded = _header(scope, name)
        if forwarded is not None and forwarded.split(",")[0].strip() == secure_value:
            return "https"
    return "http"


def _origin_key(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    return (scheme, host.lower().rstrip("."), port or _DEFAULT_PORT.get(scheme, 0))


def origin_allowed(scope: dict) -> bool:
    origin = _header(scope, b"origin")
    host_header = _header(scope, b"host")
    if not origin or origin == "null" or not host_header:
        return False
    try:
        parsed = urlsplit(origin)
        origin_port = parsed.port
    except ValueError:  # a port that is not a number
        return False
    if not parsed.scheme or not parsed.hostname:
        return False
    origin_key = _origin_key(parsed.scheme, parsed.hostname, origin_port)
    trusted = set()
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        try:
            t = urlsplit(entry)
            if t.scheme and t.hostname and "*" not in entry:
                trusted.add(_origin_key(t.scheme, t.hostname, t.port))
        except ValueError:
            continue
    if origin_key in trusted:
        return True
    host, port = split_domain_port(host_header)
    if not host or not validate_host(host, settings.ALLOWED_HOSTS):
        return False
    scheme = _request_scheme(scope)
    own = _origin_key(scheme, host, int(port) if port else None)
    return origin_key == own


class SameOriginValidator:
    """ASGI middleware: refuse a WebSocket whose Origin is not its own origin."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
