from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Deliveries"

    def ready(self) -> None:
        # Registers the system check on the broker visibility timeout.
        from . import checks  # noqa: F401
