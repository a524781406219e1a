"""Lab recordings: read a run directory of ``bin/lab`` (``run.json`` and
``samples.jsonl``, docs/lab.md) or a compact copy (``quality/recordings/*.jsonl.gz``),
and write compact copies.

A compact copy is gzip'd JSON lines: first the run's header (id, profile, mode,
phases), then one sample per line with only the fields the features and labels
use. Every reader error is a ``RecordingError`` naming the file and line.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What the features (quality/features.py) and the labels (quality/labels.py) read.
FIELDS = (
    "t",
    "rtt",
    "loss_in",
    "loss_out",
    "jitter",
    "bw_out",
    "send_kbps",
    "recv_kbps",
    "qlr",
    "fps_in",
    "decoded",
    "dropped",
    "freezes",
    "freeze_ms",
    "conceal",
    "level",
    "pred",
)
COMPACT_SUFFIX = ".jsonl.gz"


class RecordingError(ValueError):
    pass


Link = tuple[str, str]  # (sender, receiver): samples the sender took about that peer


@dataclass
class Run:
    id: str
    profile: str
    mode: str
    phases: list[Any] = field(default_factory=list)
    # The lab's own per-run measures (summary.json: stalls from its 500 ms ticks), if any.
    summary: dict[str, Any] = field(default_factory=dict)
    # Samples per link, oldest first (by the client's clock ``t``).
    links: dict[Link, list[dict[str, Any]]] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "profile": self.profile,
            "mode": self.mode,
            "phases": self.phases,
            "summary": self.summary,
        }


def _profile_name(meta: dict[str, Any]) -> str:
    p = meta.get("profile")
    if isinstance(p, dict):
        p = p.get("name")
    return str(p) if p else "?"


def _sample(doc: Any, where: str) -> tuple[Link, dict[str, Any]]:
    if not isinstance(doc, dict):
        raise RecordingError(f"{where}: a sample must be a JSON object")
    sender = doc.get("from_peer")
    receiver = doc.get("to_peer", doc.get("peer"))
    if not isinstance(sender, str) or not isinstance(receiver, str):
        raise RecordingError(f"{where}: a sample needs 'from_peer' and 'to_peer' strings")
    t = doc.get("t", doc.get("at"))
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise RecordingError(f"{where}: a sample needs a numeric 't' (client ms epoch)")
    s = {k: doc.get(k) for k in FIELDS}
    s["t"] = t
    return (sender, receiver), s


def _add(run: Run, lines: Iterable[tuple[str, Any]]) -> Run:
    for where, doc in lines:
        link, s = _sample(doc, where)
        run.links.setdefault(link, []).append(s)
    for samples in run.links.values():
        samples.sort(key=lambda s: s["t"])
    return run


def _json_lines(path: Path, text: Iterable[str]) -> Iterator[tuple[str, Any]]:
    for n, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{n}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{path}:{n}: not JSON ({exc.msg})") from None


def run_read_dir(path: Path) -> Run:
    """A lab run directory: ``run.json`` and ``samples.jsonl``."""
    meta_path, samples_path = path / "run.json", path / "samples.jsonl"
    if not samples_path.is_file():
        raise RecordingError(f"{path}: no samples.jsonl (not a lab run directory)")
    meta: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{meta_path}: not JSON ({exc.msg})") from None
        if not isinstance(meta, dict):
            raise RecordingError(f"{meta_path}: expected a JSON object")
    summary: dict[str, Any] = {}
    summary_path = path / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{summary_path}: not JSON ({exc.msg})") from None
    # bin/lab names a run folder <session>/<profile>--<mode>: both make the id unique.
    default_id = f"{path.parent.name}--{path.name}" if path.parent.name else path.name
    run = Run(
        id=str(meta.get("run") or meta.get("id") or default_id),
        profile=_profile_name(meta),
        mode=str(meta.get("mode") or meta.get("adapt") or "?"),
        phases=list(meta.get("phases") or []),
        summary=summary if isinstance(summary, dict) else {},
    )
    if meta.get("mode_applied") is False:
        # The page had no adaptation modes yet (before issue 14's ladder): whatever the
        # lab asked, the call ran its old send policy.
        run.mode = "old-policy"
    for key in ("samples_source", "date", "machine", "command"):
        if key in meta:  # where the samples came from, when, how (kept in the compact copy)
            run.summary[key] = meta[key]
    if isinstance(meta.get("peers"), list):
        # Which peer id each seat name is: the summary names links by seat.
        run.summary["peers"] = [
            {"peer": p.get("peer"), "name": p.get("name")}
            for p in meta["peers"]
            if isinstance(p, dict)
        ]
    with samples_path.open() as f:
        return _add(run, _json_lines(samples_path, f))


def run_read_compact(path: Path) -> Run:
    try:
        with gzip.open(path, "rt") as f:
            lines = _json_lines(path, f)
            first = next(lines, None)
            if first is None or not isinstance(first[1], dict) or "run" not in first[1]:
                raise RecordingError(f"{path}:1: expected the run header")
            h = first[1]
            run = Run(
                id=str(h["run"]),
                profile=str(h.get("profile", "?")),
                mode=str(h.get("mode", "?")),
                phases=list(h.get("phases") or []),
                summary=dict(h.get("summary") or {}),
            )
            return _add(run, lines)
    except (OSError, EOFError) as exc:
        raise RecordingError(f"{path}: not a gzip'd recording ({exc})") from None


def run_write_compact(run: Run, out_dir: Path) -> Path:
    """Write ``<out_dir>/<run id>.jsonl.gz``; returns its path. Deterministic
    (no timestamp in the gzip header) so an unchanged run gives the same bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{run.id}{COMPACT_SUFFIX}"
    lines = [json.dumps(run.header(), separators=(",", ":"))]
    for (sender, receiver), samples in sorted(run.links.items()):
        for s in samples:
            doc = {"from_peer": sender, "to_peer": receiver}
            doc.update({k: v for k, v in s.items() if v is not None})
            lines.append(json.dumps(doc, separators=(",", ":")))
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(("\n".join(lines) + "\n").encode())
    return path


def runs_find(paths: Iterable[Path]) -> list[Run]:
    """Every run under the given paths: a run directory, a compact recording, or a
    directory holding either (one level down). RecordingError when a path does not
    exist, holds no run, or two runs share an id."""
    runs: list[Run] = []
    for p in paths:
        if not p.exists():
            raise RecordingError(f"{p}: no such file or directory")
        if p.is_file():
            if not p.name.endswith(COMPACT_SUFFIX):
                raise RecordingError(f"{p}: not a run directory nor a *{COMPACT_SUFFIX} recording")
            runs.append(run_read_compact(p))
        elif (p / "samples.jsonl").is_file():
            runs.append(run_read_dir(p))
        else:
            found = [c for c in sorted(p.iterdir()) if (c / "samples.jsonl").is_file()]
            found += sorted(p.glob(f"*{COMPACT_SUFFIX}"))
            if not found:
                raise RecordingError(f"{p}: holds no lab run (samples.jsonl) nor recording")
            runs.extend(runs_find(found))
    seen: set[str] = set()
    for r in runs:
        if r.id in seen:
            raise RecordingError(f"run {r.id!r} is given twice")
        seen.add(r.id)
    return runs
