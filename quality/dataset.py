"""From recordings to per-link series: each sender sample's features, whether a
freeze of that link starts within the horizon after it, and whether it counts
at all (not while the sender sends audio only, not during a freeze)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .features import MAX_AGE_MS, features, window_of
from .labels import Episode, freeze_episodes
from .recordings import Link, Run

HORIZON_MS = 6_000


@dataclass
class LinkSeries:
    run: str
    profile: str
    mode: str
    link: Link
    samples: list[dict[str, Any]]  # the sender's, oldest first
    episodes: list[Episode]
    x: list[list[float]] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    use: list[bool] = field(default_factory=list)
    # Counted samples of a clean path (the lab's unimpaired phases, the whole window
    # inside one, no freeze coming): an alarm there costs video for nothing.
    calm: list[bool] = field(default_factory=list)
    # Freeze time the receiver's browser reported over the whole recording.
    freeze_ms: float = 0.0
    # The lab's stall time of this link (summary.json, frames >= 1 s apart), if known.
    lab_stall_ms: float | None = None

    @property
    def t(self) -> list[float]:
        return [s["t"] for s in self.samples]


def link_series(
    run: Run, *, horizon_ms: float = HORIZON_MS, min_freeze_ms: float = 0.0
) -> list[LinkSeries]:
    """One series per link of the run whose receiver's samples are recorded too
    (the label comes from the receiver)."""
    out = []
    for (sender, receiver), sent in sorted(run.links.items()):
        received = run.links.get((receiver, sender))
        if not received:
            continue
        eps = freeze_episodes(sent=sent, received=received, min_freeze_ms=min_freeze_ms)
        ls = LinkSeries(run.id, run.profile, run.mode, (sender, receiver), sent, eps)
        ls.lab_stall_ms = _lab_stall_ms(run, sender, receiver)
        ls.freeze_ms = sum(
            float(f) for r in received if isinstance(f := r.get("freeze_ms"), int | float) and f > 0
        )
        spans = _calm_spans(run, horizon_ms)
        for i, s in enumerate(sent):
            t = s["t"]
            ls.x.append(features(window_of(sent[: i + 1])))
            ls.y.append(int(any(t < e.onset <= t + horizon_ms for e in eps)))
            ls.use.append(s.get("level") != "audio" and not any(e.covers(t) for e in eps))
            ls.calm.append(ls.use[-1] and not ls.y[-1] and any(lo <= t <= hi for lo, hi in spans))
        out.append(ls)
    return out


def _calm_spans(run: Run, horizon_ms: float) -> list[tuple[float, float]]:
    """Times (ms) whose feature window lies inside an unimpaired phase of the run
    (no ``paths``) and that end at least the horizon before the phase does."""
    spans = []
    for ph in run.phases:
        if not isinstance(ph, dict) or ph.get("paths"):
            continue
        start, end = ph.get("start_ms"), ph.get("end_ms")
        if not isinstance(start, int | float) or not isinstance(end, int | float):
            continue
        lo, hi = start + MAX_AGE_MS, end - horizon_ms
        if hi > lo:
            spans.append((float(lo), float(hi)))
    return spans


def _lab_stall_ms(run: Run, sender: str, receiver: str) -> float | None:
    """The lab's stall time of A's video at B: its summary names links by seat
    ("peer0\u2192peer1"), run.json's peers map seats to peer ids (kept in the
    summary's ``peers`` when the compact copy is made)."""
    links = run.summary.get("links")
    names = {p.get("peer"): p.get("name") for p in run.summary.get("peers", [])}
    if not isinstance(links, dict) or sender not in names or receiver not in names:
        return None
    v = links.get(f"{names[sender]}\u2192{names[receiver]}", {}).get("freeze_ms_ge_1s")
    return float(v) if isinstance(v, int | float) else None
