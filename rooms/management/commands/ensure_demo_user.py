import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from rooms import services
from rooms.models import Room

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-huddle-2026"  # noqa: S105 - dev only; refused with DEBUG off


class Command(BaseCommand):
    help = "Create a demo account (staff) with a demo room, for local development only."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("refusing to create a demo account with DJANGO_DEBUG off")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        if not Room.objects.filter(slug="demo").exists():
            services.room_create(
                owner=user, name="Demo room", slug="demo", capacity=6, guest_access=True
            )
        self.stdout.write(
            self.style.SUCCESS(
                # The port the Procfile's daphne listens on, not always 8000.
                f"Open http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}/ and log in as "
                f"{DEMO_USERNAME} / {DEMO_PASSWORD} "
                "(also admin at /admin/), or sign up at /accounts/signup/."
            )
        )
