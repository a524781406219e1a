"""Refuse webhook URLs that would make our workers call into private networks (SSRF)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from videochat.errors import AppError


class UnsafeURL(AppError):
    code = "unsafe_url"
    message = "This URL is not allowed."


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local (cloud metadata at
    # 169.254.169.254), shared (100.64/10), reserved and unspecified ranges.
    return not ip.is_global or ip.is_multicast


def url_check(*, url: str, allow_private: bool) -> None:
    """Raise UnsafeURL unless ``url`` is http(s) to public addresses only.

    Checked when the owner saves the URL and again before each call, since a
    name may later resolve elsewhere (DNS rebinding narrows to the gap between
    this check and the connect).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("This is not a valid URL.") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Only http:// and https:// URLs are allowed.")
    host = parts.hostname
    if not host:
        raise UnsafeURL("The URL has no host.")
    if allow_private:
        return
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"The host {host!r} cannot be resolved.") from exc
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if _refused(ipaddress.ip_address(address)):
            raise UnsafeURL(
                f"The host {host!r} points at a private, loopback or reserved address "
                f"({address}); webhooks may only call public addresses."
            )
