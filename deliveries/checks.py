"""The broker must not redeliver a task that is merely waiting for its retry."""

from django.conf import settings
from django.core import checks


def longest_countdown_s() -> float:
    """The longest a retry of a delivery (or of the dead-letter spool) may wait."""
    return max(settings.DELIVERY_RETRY_MAX_S, settings.BREAKER_COOLDOWN_S) + 1.0


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
