import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser
from pymongo.errors import PyMongoError

from scaling import conf, selectors
from scaling.evaluation import replay, trace_generate, trace_read_csv


class Command(BaseCommand):
    help = (
        "Replay a daily load trace (generated and seeded, a CSV, or load_samples) minute "
        "by minute: next-hour forecast error, and how much earlier than a reactive "
        "utilisation rule the predictive recommendation adds nodes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        src = parser.add_mutually_exclusive_group()
        src.add_argument("--csv", type=Path, help="recorded trace: 'timestamp,load' per minute")
        src.add_argument(
            "--from-samples", type=int, metavar="DAYS", help="the last DAYS of load_samples"
        )
        parser.add_argument("--days", type=int, default=10, help="generated trace length")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--peak", type=float, default=12000.0, help="generated peak sockets")
        parser.add_argument("--train-days", type=int, default=7, help="days to fit on")
        parser.add_argument("--capacity", type=float, default=None, help="sockets per node")
        parser.add_argument("--target", type=float, default=None, help="target utilisation")
        parser.add_argument("--horizon", type=int, default=60, help="forecast minutes ahead")
        parser.add_argument("--boot-minutes", type=int, default=5, help="node start-up time")
        parser.add_argument("--reactive-minutes", type=int, default=3)
        parser.add_argument("--save-trace", type=Path, help="write the trace used as CSV")
        parser.add_argument("--json", action="store_true", help="print only the JSON report")

    def handle(self, *args, **options) -> None:
        capacity = options["capacity"] or conf.node_capacity_sockets()
        target = options["target"] or conf.target_utilisation()
        if capacity <= 0 or not 0 < target <= 1:
            raise CommandError("--capacity must be > 0 and --target in (0, 1]")
        if options["boot_minutes"] < 0 or options["reactive_minutes"] < 1:
            raise CommandError("--boot-minutes must be >= 0 and --reactive-minutes >= 1")
        trace, source = self._trace(options)
        if options["save_trace"]:
            with options["save_trace"].open("w") as f:
                f.write("minute,load\n")
                f.writelines(f"{i},{v:.1f}\n" for i, v in enumerate(trace))
        try:
            report = replay(
                trace,
                train_days=options["train_days"],
                capacity=capacity,
                target_utilisation=target,
                horizon=options["horizon"],
                boot_minutes=options["boot_minutes"],
                reactive_minutes=options["reactive_minutes"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        report["source"] = source
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        f, lead = report["forecast"], report["lead_minutes"]
        self.stdout.write(
            f"{source}: fitted on {report['train_days']} days, replayed "
            f"{report['held_out_days']} held-out days minute by minute"
        )
        self.stdout.write(
            f"next-hour forecast: MAPE {f['mape_pct']} % (same time yesterday: "
            f"{f['seasonal_naive_mape_pct']} %), MAE {f['mae']}, peak MAPE {f['peak_mape_pct']} %"
        )
        self.stdout.write(
            f"lead over the reactive rule: mean {lead['mean']} min, median {lead['median']} "
            f"min over {lead['levels_compared']} node additions"
        )
        for name, p in report["policies"].items():
            self.stdout.write(
                f"{name:<10} overloaded {p['overloaded_minutes']} min, above target "
                f"{p['above_target_minutes']} min, mean nodes {p['mean_nodes']}"
            )
        self.stdout.write(json.dumps(report, indent=2))

    def _trace(self, options: dict) -> tuple[np.ndarray, str]:
        if options["csv"]:
            path: Path = options["csv"]
            if not path.is_file():
                raise CommandError(f"--csv {path}: no such file")
            try:
                return trace_read_csv(path), f"CSV {path}"
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        if options["from_samples"] is not None:
            days = options["from_samples"]
            if not 3 <= days <= 60:
                raise CommandError(f"--from-samples {days}: give 3 to 60 days")
            now = datetime.now(UTC)
            try:
                series, _ = selectors.load_series(
                    metric="sockets", since=now - timedelta(days=days), until=now, step=1
                )
            except PyMongoError as exc:
                raise CommandError(f"MongoDB is unreachable: {exc}") from exc
            return series, f"load_samples, last {days} days"
        days, peak = options["days"], options["peak"]
        if not 3 <= days <= 90 or peak <= 0:
            raise CommandError(f"--days {days} --peak {peak:g}: give 3 to 90 days and a peak > 0")
        trace = trace_generate(days=days, seed=options["seed"], peak=peak)
        return trace, f"generated trace (seed {options['seed']}, {days} days, peak {peak:.0f})"
