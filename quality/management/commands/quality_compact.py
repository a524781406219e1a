from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from quality.commands import runs_load
from quality.recordings import run_write_compact


class Command(BaseCommand):
    help = (
        "Copy lab runs as compact recordings (gzip'd JSON lines, only the fields the "
        "predictor uses) for quality/recordings/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--runs", type=Path, nargs="+", required=True)
        parser.add_argument("--out", type=Path, default=Path("quality/recordings"))

    def handle(self, *args, **options) -> None:
        for run in runs_load(options["runs"]):
            path = run_write_compact(run, options["out"])
            n = sum(len(s) for s in run.links.values())
            self.stdout.write(f"{path}: {run.profile} {run.mode}, {n} samples")
