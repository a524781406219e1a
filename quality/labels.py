"""Freeze episodes of one link, the label the model learns to see coming.

The link A -> B is the video A sends B. A freezes it for B when B's samples about
A show a freeze (``freeze_ms`` > ``min_freeze_ms``) or a collapse of the inbound
frame rate below ``FPS_FLOOR`` while A sends video (A's ``level`` is not
``audio``: a picture A stopped on purpose is not a freeze). Before B first
decodes ``VIDEO_STARTED_FPS`` frames per second nothing counts (the call starting).

The browser reports a freeze when it ends, so an episode's onset is the earliest
moment the samples allow: the start of the first frozen interval, or that start
minus the freeze time reported in it. Lead times measured against it are lower
bounds (by up to one sampling interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FPS_FLOOR = 2.0
VIDEO_STARTED_FPS = 5.0
MAX_GAP_MS = 6_000  # a longer gap between two samples says nothing about it
LEVEL_SLACK_MS = 2_500  # the sender's level this close around an interval applies to it


@dataclass(frozen=True)
class Episode:
    onset: float  # ms, client clock
    end: float
    freeze_ms: float  # freeze time the receiver reported in it

    def covers(self, t: float) -> bool:
        return self.onset <= t <= self.end


def _num(s: dict[str, Any], key: str) -> float | None:
    v = s.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _fps(prev: dict[str, Any], cur: dict[str, Any]) -> float | None:
    fps = _num(cur, "fps_in")
    if fps is not None:
        return fps
    decoded = _num(cur, "decoded")
    span = cur["t"] - prev["t"]
    return None if decoded is None or span <= 0 else decoded * 1000 / span


def _video_sent(sent: Sequence[dict[str, Any]], t0: float, t1: float) -> bool:
    """Whether the sender sent video over (t0, t1]: it has samples around the
    interval and none of them says ``audio``."""
    near = [s for s in sent if t0 - LEVEL_SLACK_MS <= s["t"] <= t1 + LEVEL_SLACK_MS]
    return bool(near) and all(s.get("level") != "audio" for s in near)


def freeze_episodes(
    *,
    sent: Sequence[dict[str, Any]],
    received: Sequence[dict[str, Any]],
    min_freeze_ms: float = 0.0,
) -> list[Episode]:
    """Freeze episodes of the link whose sender took ``sent`` and whose receiver
    took ``received`` (both oldest first)."""
    episodes: list[Episode] = []
    started = False
    cur_ep: tuple[float, float, float] | None = None  # onset, end, freeze_ms
    for prev, cur in zip(received, received[1:], strict=False):
        span = cur["t"] - prev["t"]
        fps = _fps(prev, cur)
        if fps is not None and fps >= VIDEO_STARTED_FPS:
            started = True
        frozen = False
        onset = prev["t"]
        freeze = _num(cur, "freeze_ms") or 0.0
        if started and 0 < span <= MAX_GAP_MS and _video_sent(sent, prev["t"], cur["t"]):
            if freeze > min_freeze_ms:
                frozen = True
                onset = prev["t"] - freeze
            if fps is not None and fps < FPS_FLOOR:
                frozen = True
        if frozen:
            if cur_ep is None:
                cur_ep = (onset, cur["t"], freeze)
            else:
                cur_ep = (min(cur_ep[0], onset), cur["t"], cur_ep[2] + freeze)
        elif cur_ep is not None:
            episodes.append(Episode(*cur_ep))
            cur_ep = None
    if cur_ep is not None:
        episodes.append(Episode(*cur_ep))
    return episodes
