"""Where Redis is: one server (``REDIS_URL``) or a Sentinel-watched primary.

Read once by the settings, which turn it into each library's own configuration
(channel layer, Celery, django-rq, Django's cache); ``videochat.redis`` builds the
app's own clients from it. No Django imports: the settings import this.

With Sentinel (``REDIS_SENTINELS`` set), clients ask the sentinels for the current
primary of ``REDIS_SENTINEL_MASTER`` on every (re)connect, so a failover needs no
change of settings and no restart (docs/operations.md, "Redis with Sentinel").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SENTINEL_PORT = 26379
_MASTER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
# Only the Sentinel variables; REDIS_URL is checked apart (one or the other).
SENTINEL_VARS = (
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_PASSWORD",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_DB",
)


@dataclass(frozen=True)
class RedisConfig:
    """``sentinels`` empty: one server at ``url``. Otherwise ``url`` is unused."""

    url: str = DEFAULT_URL
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    password: str | None = None
    sentinel_password: str | None = None
    db: int = 0

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def describe(self) -> str:
        """Where, without passwords (logs, health details)."""
        if not self.uses_sentinel:
            return re.sub(r"//[^@/]*@", "//***@", self.url)
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"sentinel {self.master} via {hosts} db {self.db}"

    # --- each library's own Sentinel support -------------------------------------

    def sentinel_kwargs(self, **socket: float) -> dict[str, Any]:
        """For the connections to the sentinels themselves. redis-py copies the
        socket timeouts only when no sentinel_kwargs are given: always pass them,
        or a sentinel that hangs hangs every reconnect."""
        kwargs: dict[str, Any] = dict(socket)
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs

    def channel_layer_host(self, **options: Any) -> dict[str, Any]:
        """One entry of channels_redis' ``hosts`` (videochat.redis.ChannelLayer)."""
        if not self.uses_sentinel:
            return {"address": self.url, **options}
        return {
            "sentinels": list(self.sentinels),
            "master_name": self.master,
            "sentinel_kwargs": self.sentinel_kwargs(socket_timeout=2, socket_connect_timeout=2),
            "password": self.password,
            "db": self.db,
            **options,
        }

    def celery_broker_url(self) -> str:
        """kombu's form: ``sentinel://:password@host:port/db`` per sentinel, joined
        by ``;``. The password there is the data nodes' (kombu hands it to the
        primary); the sentinels' own goes in the transport options."""
        if not self.uses_sentinel:
            return self.url
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return ";".join(
            f"sentinel://{auth}{_netloc(host, port)}/{self.db}" for host, port in self.sentinels
        )

    def celery_transport_options(self) -> dict[str, Any]:
        if not self.uses_sentinel:
            return {}
        return {
            "master_name": self.master,
            "sentinel_kwargs": self.sentinel_kwargs(socket_timeout=2, socket_connect_timeout=2),
        }

    def rq_queue(self, **options: Any) -> dict[str, Any]:
        """One django-rq queue (its ``SENTINELS`` form with Sentinel)."""
        if not self.uses_sentinel:
            return {"URL": self.url, **options}
        return {
            "SENTINELS": list(self.sentinels),
            "MASTER_NAME": self.master,
            "DB": self.db,
            "PASSWORD": self.password,
            "SOCKET_TIMEOUT": 30,  # above rq's 5 s blocking dequeue
            "CONNECTION_KWARGS": {"socket_connect_timeout": 2},
            "SENTINEL_KWARGS": self.sentinel_kwargs(socket_timeout=2, socket_connect_timeout=2),
            **options,
        }


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_sentinels(raw: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` (``[v6]:port``; a missing port is 26379)."""
    out: list[tuple[str, int]] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS={raw!r} has an empty entry (use host:port,host:port)"
            )
        match = re.fullmatch(r"\[([0-9A-Fa-f:]+)\](?::(.*))?|([^:]+)(?::(.*))?", item)
        if match is None:
            raise ImproperlyConfigured(f"REDIS_SENTINELS entry {item!r} is not host:port")
        host = match[1] or match[3]
        port_text = match[2] if match[1] else match[4]
        if match[3] and not _HOST.match(host):
            raise ImproperlyConfigured(f"REDIS_SENTINELS entry {item!r}: bad host name")
        if port_text is None:
            port = SENTINEL_PORT
        elif not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS entry {item!r}: port must be 1-65535, got {port_text!r}"
            )
        else:
            port = int(port_text)
        if (host, port) in out:
            raise ImproperlyConfigured(f"REDIS_SENTINELS lists {host}:{port} twice")
        out.append((host, port))
    return tuple(out)


def redis_config(environ: dict[str, str]) -> RedisConfig:
    """The configuration from ``environ`` or ImproperlyConfigured naming the variable."""
    sentinels_raw = (environ.get("REDIS_SENTINELS") or "").strip()
    if not sentinels_raw:
        stray = [name for name in SENTINEL_VARS[1:] if environ.get(name)]
        if stray:
            raise ImproperlyConfigured(
                f"{', '.join(stray)} set without REDIS_SENTINELS (with one server, "
                "put the password and database in REDIS_URL)"
            )
        url = environ.get("REDIS_URL") or DEFAULT_URL
        if not re.match(r"^(redis|rediss|unix)://", url):
            raise ImproperlyConfigured(
                f"REDIS_URL must start with redis://, rediss:// or unix://, got {url[:20]!r}"
            )
        return RedisConfig(url=url)
    if environ.get("REDIS_URL"):
        raise ImproperlyConfigured(
            "set REDIS_URL (one server) or REDIS_SENTINELS (a Sentinel-watched primary), not both"
        )
    master = (environ.get("REDIS_SENTINEL_MASTER") or "").strip()
    if not master:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS is set: REDIS_SENTINEL_MASTER must name the primary"
        )
    if not _MASTER_NAME.match(master):
        raise ImproperlyConfigured(
            f"REDIS_SENTINEL_MASTER={master!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    db_raw = (environ.get("REDIS_DB") or "0").strip()
    if not db_raw.isdigit() or not 0 <= int(db_raw) <= 15:
        raise ImproperlyConfigured(f"REDIS_DB must be a database number 0-15, got {db_raw!r}")
    return RedisConfig(
        sentinels=parse_sentinels(sentinels_raw),
        master=master,
        password=environ.get("REDIS_PASSWORD") or None,
        sentinel_password=environ.get("REDIS_SENTINEL_PASSWORD") or None,
        db=int(db_raw),
    )
