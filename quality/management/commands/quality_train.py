import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quality.commands import add_run_arguments, runs_load, series_load
from quality.training import NotEnoughData, model_fit


class Command(BaseCommand):
    help = (
        "Train the freeze predictor on lab recordings (logistic regression on features "
        "of each link's last samples) and write the JSON model the browser loads."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_run_arguments(parser)
        parser.add_argument(
            "--out",
            type=Path,
            default=Path("static/js/quality-model.json"),
            help="where to write the model (default static/js/quality-model.json)",
        )
        parser.add_argument(
            "--horizon", type=float, default=6.0, help="seconds ahead a freeze is predicted"
        )
        parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation")
        parser.add_argument(
            "--max-false-share",
            type=float,
            default=0.2,
            help="the alarm threshold keeps false alarms at or below this share (default 0.2)",
        )

    def handle(self, *args, **options) -> None:
        if not 1 <= options["horizon"] <= 30:
            raise CommandError("--horizon must be 1 to 30 seconds")
        if options["c"] <= 0 or not 0 < options["max_false_share"] <= 1:
            raise CommandError("--c must be > 0 and --max-false-share in (0, 1]")
        out: Path = options["out"]
        if not out.parent.is_dir():
            raise CommandError(f"--out {out}: no such directory {out.parent}")
        runs = runs_load(options["runs"])
        series = series_load(
            runs, horizon_ms=options["horizon"] * 1000, min_freeze_ms=options["min_freeze_ms"]
        )
        try:
            model = model_fit(
                series,
                horizon_ms=options["horizon"] * 1000,
                c=options["c"],
                max_false_share=options["max_false_share"],
            )
        except NotEnoughData as exc:
            raise CommandError(str(exc)) from exc
        out.write_text(json.dumps(model, indent=1) + "\n")
        t = model["trained"]
        sc = t["on_training_runs"]
        self.stdout.write(
            f"trained on {len(t['runs'])} runs, {t['samples']} samples ({t['positives']} "
            f"before a freeze); threshold {model['threshold']}: on the training runs "
            f"{sc['caught_2s']}/{sc['freezes']} freezes caught >= 2 s ahead, "
            f"false-alarm share {sc['false_alarm_share']}"
        )
        self.stdout.write(f"wrote {out}")
