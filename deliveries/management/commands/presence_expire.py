from django.core.management.base import CommandParser

from deliveries.maintenance import presence_expire

from ._base import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Remove room peers whose heartbeats stopped (rooms nobody pings any more)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--timeout", type=float, default=None, help="seconds (default 30)")

    def handle(self, *args, **options) -> None:
        self.emit(presence_expire(dry_run=options["dry_run"], timeout_s=options["timeout"]))
