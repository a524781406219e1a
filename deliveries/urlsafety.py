"""Refuse webhook URLs that would make our workers call into private networks (SSRF)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from videochat.errors import AppError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry an IPv4 address in their last 32 bits, which a
# translator or tunnel on the path turns back into that IPv4 destination:
# NAT64's well-known prefix (RFC 6052) and the deprecated IPv4-compatible
# form (::a.b.c.d). Python's is_global judges the IPv6 wrapper, not the target.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Local-use NAT64 (RFC 8215) is a site's own translator, never a public target.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class UnsafeURL(AppError):
    code = "unsafe_url"
    message = "This URL is not allowed."


def address_embedded_ipv4(*, ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 destination an IPv6 address stands for, if it wraps one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def address_refused(*, ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return True
        embedded = address_embedded_ipv4(ip=ip)
        if embedded is not None:
            ip = embedded
    # is_global is False for private, loopback, link-local (cloud metadata at
    # 169.254.169.254), shared (100.64/10), reserved and unspecified ranges.
    return not ip.is_global or ip.is_multicast


def _host_and_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("This is not a valid URL.") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Only http:// and https:// URLs are allowed.")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def url_addresses(*, url: str, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, each checked; raise UnsafeURL
    unless it is http(s) to public addresses only (any address if ``allow_private``).

    Callers connect to these addresses, never to the name again: a second
    lookup could answer differently (DNS rebinding) after this check.
    """
    host, port = _host_and_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"The host {host!r} cannot be resolved.") from exc
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if not allow_private and address_refused(ip=ipaddress.ip_address(address)):
            raise UnsafeURL(
                f"The host {host!r} points at a private, loopback or reserved address "
                f"({address}); webhooks may only call public addresses."
            )
        if address not in addresses:
            addresses.append(address)
    return addresses


def url_check(*, url: str, allow_private: bool) -> None:
    """Raise UnsafeURL unless ``url`` is http(s) to public addresses only.

    Checked when the owner saves the URL; the sender checks again before each
    call with ``url_addresses`` and connects to what it checked.
    """
    if allow_private:
        _host_and_port(url)  # development and tests: any host, resolvable yet or not
        return
    url_addresses(url=url, allow_private=False)
