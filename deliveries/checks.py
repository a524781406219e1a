"""The broker must not redeliver a task that is merely waiting for its retry."""

from django.conf import settings
from django.core import checks


def longest_countdown_s() -> float:
    """The longest a retry of a delivery (or of the dead-letter spool) may wait.

    A delivery refused by an open breaker waits out at most one cool-down plus
    a random part of another (pipeline.breaker_wait_countdown_s); one that
    finds another worker's lock waits for the lock to expire.
    """
    return (
        max(
            settings.DELIVERY_RETRY_MAX_S,
            2 * settings.BREAKER_COOLDOWN_S,
            settings.DELIVERY_HTTP_TIMEOUT_S + 5,
        )
        + 1.0
    )


@checks.register(checks.Tags.compatibility)
def visibility_timeout_check(app_configs, **kwargs):
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    timeout = options.get("visibility_timeout", 3600)  # kombu's Redis default
    longest = longest_countdown_s()
    if timeout <= longest:
        return [
            checks.Error(
                f"CELERY_VISIBILITY_TIMEOUT ({timeout} s) must exceed the longest retry "
                f"delay ({longest:.0f} s), or Redis redelivers tasks that are only waiting.",
                hint="Raise CELERY_VISIBILITY_TIMEOUT or lower DELIVERY_RETRY_MAX_S / "
                "BREAKER_COOLDOWN_S.",
                id="deliveries.E001",
            )
        ]
    return []
