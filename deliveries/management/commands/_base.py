from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from deliveries.maintenance import report_json


class MaintenanceCommand(BaseCommand):
    """A maintenance command: --dry-run reports what would change; JSON out."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )

    def emit(self, report: dict[str, Any]) -> None:
        self.stdout.write(report_json(report))
