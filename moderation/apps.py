from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Keeping order in a room: kick, ban, mute, lock, lobby, roles (services.py),
    from the call (handlers.py) and the Django admin (admin.py). Its tables
    (Ban, AuditLog) stay in the rooms app."""

    name = "moderation"

    def ready(self) -> None:
        # Registers the mod.* frame handlers with rooms.protocol.
        from . import handlers  # noqa: F401
