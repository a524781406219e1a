"""The image's HEALTHCHECK: exit 0 when this container's /healthz answers 200.

    python /app/deploy/healthcheck.py [PORT]      (default 8000, the image's CMD)

Runs inside the container (deploy/Dockerfile) with nothing but the standard
library. Django answers only to a host in DJANGO_ALLOWED_HOSTS (any other Host
header is a 400), so the request names the first of them, as HAProxy's check
and the Kubernetes readiness probe do.
"""

import os
import sys
import urllib.error
import urllib.request

PORT = 8000


def probe_host(allowed_hosts: str) -> str:
    """The Host header for a probe: the first allowed host, usable as a name."""
    first = allowed_hosts.split(",")[0].strip()
    if not first or first == "*":
        return "localhost"
    return first.lstrip(".")  # ".example.com" allows example.com itself


def main(argv: list[str]) -> int:
    port = int(argv[0]) if argv else PORT  # another port: for tests outside a container
    request = urllib.request.Request(  # noqa: S310 - a fixed http:// URL on this container
        f"http://127.0.0.1:{port}/healthz",
        headers={"Host": probe_host(os.environ.get("DJANGO_ALLOWED_HOSTS", ""))},
    )
    try:
        with urllib.request.urlopen(request, timeout=7) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
