from django.core.management.base import BaseCommand, CommandError

from videochat.health import check_all


class Command(BaseCommand):
    help = "Check that the database, Redis and MongoDB are reachable; exit 1 if not."

    def handle(self, *args, **options) -> None:
        results = check_all()
        for name, result in results.items():
            self.stdout.write(f"{name:9} {result}")
        failed = [name for name, result in results.items() if result != "ok"]
        if failed:
            raise CommandError(
                f"unreachable: {', '.join(failed)}. Check DATABASE_URL, REDIS_URL and "
                "MONGODB_URI, or unset them to let bin/up start private servers."
            )
