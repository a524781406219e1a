from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_migrate, post_save

        from videochat import metrics

        # Registers the room socket's frame handlers (mod.* are the moderation app's).
        from . import gestures, handlers, signaling  # noqa: F401
        from .permissions import moderators_group_sync
        from .protocol import HANDLERS
        from .security import on_user_logged_out, on_user_saved

        # Frames in are counted by type, these types only (the rest as "unknown").
        metrics.known_frame_types(lambda t: t == "hello" or t in HANDLERS)
        # Moderation: sockets close at logout; the Moderators group stays complete.
        user_logged_out.connect(on_user_logged_out, dispatch_uid="rooms.logout_closes_sockets")
        # A password change ends the sockets of the sessions it invalidated.
        post_save.connect(
            on_user_saved, sender=get_user_model(), dispatch_uid="rooms.password_closes_sockets"
        )
        # For every app, not only rooms: messaging's permissions are created after ours.
        post_migrate.connect(moderators_group_sync, dispatch_uid="rooms.moderators")
