from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the room socket's frame handlers.
        from . import handlers, signaling  # noqa: F401
