"""From recordings to per-link series: each sender sample's features, whether a
freeze of that link starts within the horizon after it, and whether it counts
at all (not while the sender sends audio only, not during a freeze)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .features import features, window_of
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
    # Freeze time the receiver reported over the whole recording (audio-only time too).
    freeze_ms: float = 0.0

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
        ls.freeze_ms = sum(
            float(f) for r in received if isinstance(f := r.get("freeze_ms"), int | float) and f > 0
        )
        for i, s in enumerate(sent):
            t = s["t"]
            ls.x.append(features(window_of(sent[: i + 1])))
            ls.y.append(int(any(t < e.onset <= t + horizon_ms for e in eps)))
            ls.use.append(s.get("level") != "audio" and not any(e.covers(t) for e in eps))
        out.append(ls)
    return out
