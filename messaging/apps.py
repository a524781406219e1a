from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the chat frame handlers with rooms.protocol.
        from . import handlers  # noqa: F401
