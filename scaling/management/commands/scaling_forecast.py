import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from pymongo.errors import PyMongoError

from scaling import selectors, services
from scaling.model import NotEnoughHistory


class Command(BaseCommand):
    help = (
        "Forecast the next --horizon minutes from load_samples (daily Holt-Winters), "
        "recommend a node count and store it for /metrics/scaling."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--horizon", type=int, default=60, help="minutes (5-1440)")
        parser.add_argument(
            "--metric", default="sockets", help=f"one of {', '.join(selectors.METRICS)}"
        )
        parser.add_argument("--history-days", type=int, default=14, help="days of history (2-60)")
        parser.add_argument("--no-store", action="store_true", help="print only")
        parser.add_argument("--json", action="store_true", help="print JSON, not a table")

    def handle(self, *args, **options) -> None:
        horizon, days, metric = options["horizon"], options["history_days"], options["metric"]
        if not 5 <= horizon <= 1440:
            raise CommandError(f"--horizon {horizon}: give minutes between 5 and 1440")
        if not 2 <= days <= 60:
            raise CommandError(f"--history-days {days}: give 2 to 60 days")
        if metric not in selectors.METRICS:
            raise CommandError(f"--metric {metric!r}: one of {', '.join(selectors.METRICS)}")
        try:
            rec = services.recommendation_compute(horizon=horizon, metric=metric, history_days=days)
        except NotEnoughHistory as exc:
            raise CommandError(
                f"not enough load history for a daily model ({exc}, steps of "
                f"{selectors.STEP_MINUTES} min): keep scaling_sample running for two days; "
                "scaling_evaluate tries the model on a generated trace meanwhile"
            ) from exc
        except PyMongoError as exc:
            raise CommandError(f"MongoDB is unreachable: {exc}") from exc
        if not options["no_store"]:
            services.recommendation_store(recommendation=rec)
        if options["json"]:
            self.stdout.write(json.dumps(rec, indent=2))
            return
        self.stdout.write(f"{'at (UTC)':<17} {metric + ' forecast':>18} {'nodes':>6}")
        for row in rec["steps"]:
            self.stdout.write(f"{row['at'][:16]:<17} {row['forecast']:>18.0f} {row['nodes']:>6}")
        self.stdout.write(
            f"latest {rec['latest']:.0f}, peak {rec['peak_forecast']:.0f} in the next "
            f"{horizon} min; capacity {rec['capacity_per_node']:.0f}/node at "
            f"{rec['target_utilisation']:.0%}: recommended nodes {rec['recommended_nodes']} "
            f"(now reporting: {rec['nodes_reporting']})"
            + ("" if options["no_store"] else "; stored")
        )
