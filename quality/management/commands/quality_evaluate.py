import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quality.commands import add_run_arguments, model_read, runs_load, series_load
from quality.dataset import LinkSeries
from quality.evaluation import (
    LadderReplayError,
    alarms_model,
    alarms_reactive_all,
    freeze_totals,
    score,
)
from quality.training import NotEnoughData, model_fit

COLUMNS = (
    ("freezes", "freezes"),
    ("caught", "caught"),
    ("caught_2s", ">=2s"),
    ("recall", "recall"),
    ("recall_2s", "recall>=2s"),
    ("alarms", "alarms"),
    ("precision", "precision"),
    ("false_alarm_share", "false%"),
    ("false_alarms_per_min", "false/min"),
)
# Alarm episodes (docs/adaptation.md, "How it is scored"), beside the per-sample count.
EPISODE_COLUMNS = (
    ("alarms", "episodes"),
    ("precision", "ep prec"),
    ("false_alarm_share", "ep false%"),
    ("false_alarms_per_min", "ep false/m"),
)


class Command(BaseCommand):
    help = (
        "Score the freeze predictor on held-out lab recordings beside the reactive "
        "ladder's own rules: precision, recall, lead time before each freeze, false "
        "alarms per sample and per alarm episode; and the freeze time per profile and mode."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_run_arguments(parser)
        parser.add_argument("--model", type=Path, default=Path("static/js/quality-model.json"))
        parser.add_argument(
            "--cross-validate",
            action="store_true",
            help="leave one run out: train on the others, score on it, for every run "
            "(ignores --model)",
        )
        parser.add_argument(
            "--include-training-runs",
            action="store_true",
            help="also score runs the model was trained on (not held out: optimistic)",
        )
        parser.add_argument("--json", action="store_true", help="print only the JSON report")

    def handle(self, *args, **options) -> None:
        runs = runs_load(options["runs"])
        min_freeze = options["min_freeze_ms"]
        if options["cross_validate"]:
            if len(runs) < 2:
                raise CommandError("--cross-validate needs at least 2 runs")
            horizon = 6000.0
            series = series_load(runs, horizon_ms=horizon, min_freeze_ms=min_freeze)
            model_alarms: list[list[bool]] = []
            thresholds = []
            for ls in series:
                train = [o for o in series if o.run != ls.run]
                try:
                    m = model_fit(train, horizon_ms=horizon)
                except NotEnoughData as exc:
                    raise CommandError(f"leaving out {ls.run}: {exc}") from exc
                thresholds.append(m["threshold"])
                model_alarms.append(alarms_model(ls, m))
            name = "model, leave-one-run-out"
            held = series
        else:
            model = model_read(options["model"])
            horizon = float(model.get("horizon_ms", 6000))
            trained = set(model.get("trained", {}).get("runs", []))
            kept = [r for r in runs if options["include_training_runs"] or r.id not in trained]
            if not kept:
                raise CommandError(
                    f"every given run was used to train {options['model']}: give held-out "
                    "runs (or --include-training-runs, or --cross-validate)"
                )
            held = series_load(kept, horizon_ms=horizon, min_freeze_ms=min_freeze)
            model_alarms = [alarms_model(ls, model) for ls in held]
            thresholds = [model["threshold"]]
            name = f"model (p >= {model['threshold']})"
        try:
            reactive_alarms = alarms_reactive_all(held)
        except LadderReplayError as exc:
            raise CommandError(str(exc)) from exc
        report: dict[str, Any] = {
            "runs": sorted({ls.run for ls in held}),
            "links": len(held),
            "horizon_s": horizon / 1000,
            "thresholds": sorted(set(thresholds)),
            "predictors": {
                name: score(held, model_alarms, horizon_ms=horizon),
                "reactive ladder": score(held, reactive_alarms, horizon_ms=horizon),
            },
            # An average hides the abrupt profiles (no precursor by construction).
            "by_profile": {
                profile: {
                    name: score(
                        [held[i] for i in idx], [model_alarms[i] for i in idx], horizon_ms=horizon
                    ),
                    "reactive ladder": score(
                        [held[i] for i in idx],
                        [reactive_alarms[i] for i in idx],
                        horizon_ms=horizon,
                    ),
                }
                for profile in sorted({ls.profile for ls in held})
                for idx in [[i for i, ls in enumerate(held) if ls.profile == profile]]
            },
            "freeze_time": freeze_totals(held),
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self._table(report, held)
        self.stdout.write(json.dumps(report, indent=2))

    def _table(self, report: dict[str, Any], held: list[LinkSeries]) -> None:
        self.stdout.write(
            f"{len(report['runs'])} held-out runs, {report['links']} links, horizon "
            f"{report['horizon_s']:g} s (lead times are lower bounds: docs/adaptation.md)"
        )
        head = f"{'predictor':<28}" + "".join(f"{h:>11}" for _, h in COLUMNS)
        head += "".join(f"{h:>11}" for _, h in EPISODE_COLUMNS)
        head += "  lead s min/med/max"
        self.stdout.write(head)
        self._rows(report["predictors"])
        for profile, predictors in report["by_profile"].items():
            self.stdout.write(f"-- {profile}")
            self._rows(predictors)
        self.stdout.write(
            f"{'profile':<20}{'mode':<12}{'browser freeze s':>18}{'lab stall s':>13}"
            f"{'episodes':>10}{'episode s':>11}{'link min':>10}"
        )
        for row in report["freeze_time"]:
            self.stdout.write(
                f"{row['profile']:<20}{row['mode']:<12}{row['browser_freeze_s']:>18}"
                f"{_cell(row['lab_stall_s']):>13}{row['episodes']:>10}{row['episode_s']:>11}"
                f"{row['link_minutes']:>10}"
            )

    def _rows(self, predictors: dict[str, dict[str, Any]]) -> None:
        for name, sc in predictors.items():
            cells = "".join(f"{_cell(sc[k]):>11}" for k, _ in COLUMNS)
            cells += "".join(f"{_cell(sc['episodes'][k]):>11}" for k, _ in EPISODE_COLUMNS)
            lead = sc["lead_s"]
            self.stdout.write(
                f"{name:<28}{cells}  {_cell(lead['min'])}/{_cell(lead['median'])}/"
                f"{_cell(lead['max'])}"
            )


def _cell(v: Any) -> str:
    return "-" if v is None else str(v)
