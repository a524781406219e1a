"""Environment values that must be clear or stop start-up: read by the settings and
by ``videochat.webpool`` (which starts before, and without, Django's settings)."""

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, *, default: bool) -> bool:
    """Like healthchecks' envbool: anything but a clear yes/no is an error."""
    raw = env.str(name, default=None)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")
    return value in _TRUE


def env_positive(name: str, *, default: float) -> float:
    """A number above zero, or ImproperlyConfigured naming the variable."""
    raw = env.str(name, default=None)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be positive, got {raw!r}")
    return value
