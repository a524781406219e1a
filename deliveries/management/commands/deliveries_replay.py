from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from deliveries.deadletters import KINDS
from deliveries.maintenance import deadletters_replay

from ._base import MaintenanceCommand


def _since(value: str) -> datetime:
    """``24h``, ``7d`` or an ISO date/time (UTC when no offset is given)."""
    units = {"h": 3600, "d": 86400, "m": 60}
    if value[-1:] in units and value[:-1].isdigit():
        return timezone.now() - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r}: use 30m, 24h, 7d or an ISO date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(MaintenanceCommand):
    help = "Replay dead letters (status dead) through the delivery pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--kind", choices=KINDS)
        parser.add_argument("--since", help="died since: 30m, 24h, 7d or an ISO date")
        parser.add_argument("--id", dest="ids", action="append", help="a delivery id (repeat)")
        parser.add_argument("--limit", type=int, default=500)

    def handle(self, *args, **options) -> None:
        since = _since(options["since"]) if options["since"] else None
        self.emit(
            deadletters_replay(
                kind=options["kind"],
                since=since,
                delivery_ids=options["ids"],
                limit=options["limit"],
                dry_run=options["dry_run"],
                by="command",
            )
        )
