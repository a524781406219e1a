"""The scaling app's settings: a Django setting of the same name wins (tests,
deployments that prefer settings files), else the environment, else the default.

They live here, not in videochat/settings.py, so the app stays self-contained;
``settings_check`` runs at start-up (``ScalingConfig.ready``) and refuses bad values
with a message naming the variable.
"""

import socket
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from videochat.envvars import env

# Sockets one node (one daphne process per core) carries at 100 %: see
# docs/scaling.md "Capacity" for where 2,000 comes from (bench/RESULTS.md, "Capacity of
# one process": about 0.37 of a core for 2,000 idle sockets).
DEFAULT_CAPACITY_SOCKETS = 2000.0


def _get(name: str, default: Any, cast: type) -> Any:
    if hasattr(settings, name):
        return getattr(settings, name)
    raw = env.str(name, default=None)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a {cast.__name__}, got {raw!r}") from None


def node_capacity_sockets() -> float:
    return float(_get("SCALING_NODE_CAPACITY_SOCKETS", DEFAULT_CAPACITY_SOCKETS, float))


def target_utilisation() -> float:
    return float(_get("SCALING_TARGET_UTILISATION", 0.7, float))


def min_nodes() -> int:
    return int(_get("SCALING_MIN_NODES", 1, int))


def max_nodes() -> int:
    return int(_get("SCALING_MAX_NODES", 20, int))


def sample_ttl_days() -> int:
    return int(_get("SCALING_SAMPLE_TTL_DAYS", 14, int))


def forecast_every_min() -> int:
    """The per-minute sampling job also refreshes the forecast every N minutes (0: never)."""
    return int(_get("SCALING_FORECAST_EVERY_MIN", 5, int))


def node_name() -> str:
    return str(_get("SCALING_NODE_NAME", socket.gethostname(), str))


def web_port() -> int:
    # The port daphne serves (README: WEB_PORT); its established connections are
    # this node's sockets.
    return int(_get("WEB_PORT", 8000, int))


def settings_check() -> None:
    if node_capacity_sockets() <= 0:
        raise ImproperlyConfigured("SCALING_NODE_CAPACITY_SOCKETS must be > 0")
    if not 0 < target_utilisation() <= 1:
        raise ImproperlyConfigured("SCALING_TARGET_UTILISATION must be in (0, 1]")
    if not 1 <= min_nodes() <= max_nodes():
        raise ImproperlyConfigured("need 1 <= SCALING_MIN_NODES <= SCALING_MAX_NODES")
    if sample_ttl_days() < 2:
        raise ImproperlyConfigured("SCALING_SAMPLE_TTL_DAYS must be >= 2 (the model needs 2 days)")
    if forecast_every_min() < 0:
        raise ImproperlyConfigured("SCALING_FORECAST_EVERY_MIN must be >= 0")
    if ":" in node_name():
        raise ImproperlyConfigured("SCALING_NODE_NAME must not contain ':' (it keys samples)")
