from django.core.management.base import CommandError, CommandParser

from deliveries.maintenance import delivery_health, spool_flush

from ._base import MaintenanceCommand


class Command(MaintenanceCommand):
    help = (
        "Report delivery health (counts, breakers, dead letters, spool); with --flush-spool "
        "also start the spool's flusher (a Celery task) if none is pending. Exit 1 with "
        "--strict when unhealthy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--hours", type=int, default=24)
        parser.add_argument("--flush-spool", action="store_true")
        parser.add_argument("--strict", action="store_true")

    def handle(self, *args, **options) -> None:
        report = {}
        if options["flush_spool"]:
            report["spool"] = spool_flush(dry_run=options["dry_run"])
        report.update(delivery_health(hours=options["hours"]))
        self.emit(report)
        if options["strict"] and not report["healthy"]:
            raise CommandError("deliveries are unhealthy")
