"""What the quality_* management commands share: reading --runs into series,
with every bad input a CommandError (a message and a non-zero exit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from .dataset import HORIZON_MS, LinkSeries, link_series
from .features import FEATURES
from .recordings import RecordingError, Run, runs_find


def add_run_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--runs",
        type=Path,
        nargs="+",
        required=True,
        help="lab run directories (var/lab/<run>), compact recordings (*.jsonl.gz), "
        "or directories holding either",
    )
    parser.add_argument(
        "--min-freeze-ms",
        type=float,
        default=0.0,
        help="freezes reported at or below this many ms are not counted (default 0)",
    )


def runs_load(paths: list[Path]) -> list[Run]:
    try:
        return runs_find(paths)
    except RecordingError as exc:
        raise CommandError(str(exc)) from exc


def series_load(
    runs: list[Run], *, horizon_ms: float = HORIZON_MS, min_freeze_ms: float = 0.0
) -> list[LinkSeries]:
    if min_freeze_ms < 0:
        raise CommandError("--min-freeze-ms must be >= 0")
    series = [
        ls
        for r in runs
        for ls in link_series(r, horizon_ms=horizon_ms, min_freeze_ms=min_freeze_ms)
    ]
    if not series:
        raise CommandError(
            "no link has samples from both ends in these runs (the label needs the "
            "receiver's samples)"
        )
    return series


def model_read(path: Path) -> dict[str, Any]:
    try:
        model = json.loads(path.read_text())
    except FileNotFoundError:
        raise CommandError(f"--model {path}: no such file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandError(f"--model {path}: not a JSON model ({exc})") from None
    if not isinstance(model, dict) or model.get("features") != list(FEATURES):
        raise CommandError(
            f"--model {path}: its features are not this version's "
            f"(quality/features.py); retrain with manage.py quality_train"
        )
    return model
