from deliveries.maintenance import retention_prune

from ._base import MaintenanceCommand


class Command(MaintenanceCommand):
    help = (
        "Delete dead letters older than DEADLETTER_TTL_DAYS and chat messages older "
        "than CHAT_RETENTION_DAYS."
    )

    def handle(self, *args, **options) -> None:
        self.emit(retention_prune(dry_run=options["dry_run"]))
