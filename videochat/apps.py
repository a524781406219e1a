from django.apps import AppConfig


class VideochatConfig(AppConfig):
    """The project package as an app only to hook its metrics in at start-up."""

    name = "videochat"

    def ready(self) -> None:
        from . import storeerrors

        storeerrors.install()
