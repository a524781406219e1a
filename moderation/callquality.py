"""A call's quality timeline for the admin: the call.stats samples of one call
(rooms/telemetry.py), per pair of peers, as inline SVG line charts (the shared
videochat/svgchart.py) beside a table of figures and the events in words.

Two peers A and B report on the same link from both ends: A's samples (to B) say
what A receives from B (``loss_in``, ``fps_in``, freezes) and what B reports of
what A sends (``loss_out``); B's samples the same the other way. The x axis is
seconds since the call's first sample, from the server's arrival time ``at``
(both ends' clocks may differ; the server's is one clock).
"""

from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from videochat.svgchart import svg_chart

# The send ladder's levels as heights (docs/adaptation.md): a step down is a step down.
LEVEL_HEIGHT = {"full": 3, "reduced": 2, "low": 1, "audio": 0}


@dataclass
class Direction:
    """One peer's samples about another: ``sender`` measured, about ``peer``."""

    sender: str
    peer: str
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Pair:
    a: str
    b: str
    label_a: str
    label_b: str
    charts: list[SafeString] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _series(
    samples: list[dict[str, Any]], start: datetime, key: str, scale: float = 1.0
) -> list[tuple[float, float]]:
    return [
        ((s["at"] - start).total_seconds(), s[key] * scale)
        for s in samples
        if s.get(key) is not None
    ]


def _levels(samples: list[dict[str, Any]], start: datetime) -> list[tuple[float, float]]:
    # A step chart: the level holds until the next sample.
    points: list[tuple[float, float]] = []
    for s in samples:
        if s.get("level") not in LEVEL_HEIGHT:
            continue
        x, y = (s["at"] - start).total_seconds(), float(LEVEL_HEIGHT[s["level"]])
        if points and points[-1][1] != y:
            points.append((x, points[-1][1]))
        points.append((x, y))
    return points


def _row(d: Direction, label: str, peer_label: str) -> dict[str, Any]:
    s = d.samples

    def values(key: str) -> list[float]:
        return [x[key] for x in s if x.get(key) is not None]

    rtt, loss_in, loss_out = values("rtt"), values("loss_in"), values("loss_out")
    levels: dict[str, int] = {}
    for x in s:
        if x.get("level"):
            levels[x["level"]] = levels.get(x["level"], 0) + 1
    return {
        "direction": f"{label} about {peer_label}",
        "samples": len(s),
        "rtt_median": round(median(rtt)) if rtt else None,
        "rtt_max": round(max(rtt)) if rtt else None,
        "loss_in_max": round(100 * max(loss_in), 1) if loss_in else None,
        "loss_out_max": round(100 * max(loss_out), 1) if loss_out else None,
        "freezes": sum(values("freezes")),
        "freeze_s": round(sum(values("freeze_ms")) / 1000, 1),
        "relay": any(x.get("relay") for x in s),
        "levels": ", ".join(f"{k} {v}" for k, v in levels.items()),
    }


def _chart(
    title: str, lines: dict[str, list[tuple[float, float]]], *, unit: str, **kw: Any
) -> SafeString:
    return mark_safe(svg_chart(title, lines, unit=unit, **kw))  # noqa: S308 - svgchart escapes its text


def pairs_of(samples: list[dict[str, Any]]) -> list[Pair]:
    """The call's peer pairs with their charts and table rows, in order of first sample."""
    if not samples:
        return []
    start = min(s["at"] for s in samples)
    end = max(s["at"] for s in samples)
    x_max = max(1.0, (end - start).total_seconds())
    directions: dict[tuple[str, str], Direction] = {}
    for s in samples:
        key = (s["from_peer"], s["to_peer"])
        directions.setdefault(key, Direction(sender=key[0], peer=key[1])).samples.append(s)
    peers: list[str] = []
    for s in samples:
        for p in (s["from_peer"], s["to_peer"]):
            if p not in peers:
                peers.append(p)
    names = {p: f"{chr(65 + i)} ({p[:8]})" if i < 26 else p for i, p in enumerate(peers)}
    pairs: list[Pair] = []
    seen: set[frozenset[str]] = set()
    for a, b in directions:
        if frozenset((a, b)) in seen:
            continue
        seen.add(frozenset((a, b)))
        ab = directions.get((a, b), Direction(a, b))  # a's samples about b
        ba = directions.get((b, a), Direction(b, a))
        na, nb = names[a], names[b]
        short_a, short_b = na.split(" ")[0], nb.split(" ")[0]
        pair = Pair(a=a, b=b, label_a=na, label_b=nb)
        marks = [
            ((s["at"] - start).total_seconds(), f"{short} {event}")
            for d, short in ((ab, short_a), (ba, short_b))
            for s in d.samples
            for event in s.get("events") or []
        ]

        def chart(title: str, lines: dict, unit: str, **kw: Any) -> SafeString:
            return _chart(title, lines, unit=unit, x_max=x_max, **kw)

        arrow_ab, arrow_ba = f"{short_a}→{short_b}", f"{short_b}→{short_a}"
        pair.charts.append(
            chart(
                f"Round-trip time, {short_a}–{short_b}",
                {
                    f"{short_a}'s view": _series(ab.samples, start, "rtt"),
                    f"{short_b}'s view": _series(ba.samples, start, "rtt"),
                },
                "ms",
            )
        )
        pair.charts.append(
            chart(
                f"Packet loss, {short_a}–{short_b}",
                {
                    f"{arrow_ab} (measured by {short_b})": _series(
                        ba.samples, start, "loss_in", 100
                    ),
                    f"{arrow_ab} (reported to {short_a})": _series(
                        ab.samples, start, "loss_out", 100
                    ),
                    f"{arrow_ba} (measured by {short_a})": _series(
                        ab.samples, start, "loss_in", 100
                    ),
                    f"{arrow_ba} (reported to {short_b})": _series(
                        ba.samples, start, "loss_out", 100
                    ),
                },
                "%",
            )
        )
        pair.charts.append(
            chart(
                f"Bitrate, {short_a}–{short_b}",
                {
                    f"{short_a} sends": _series(ab.samples, start, "send_kbps"),
                    f"{short_b} sends": _series(ba.samples, start, "send_kbps"),
                    f"{short_a} may send (estimate)": _series(ab.samples, start, "bw_out"),
                    f"{short_b} may send (estimate)": _series(ba.samples, start, "bw_out"),
                },
                "kbit/s",
            )
        )
        pair.charts.append(
            chart(
                f"Video received, {short_a}–{short_b}",
                {
                    f"{arrow_ba} frames/s": _series(ab.samples, start, "fps_in"),
                    f"{arrow_ab} frames/s": _series(ba.samples, start, "fps_in"),
                },
                "fps",
            )
        )
        pair.charts.append(
            chart(
                f"Freezes, {short_a}–{short_b}",
                {
                    f"{arrow_ba} frozen ms": _series(ab.samples, start, "freeze_ms"),
                    f"{arrow_ab} frozen ms": _series(ba.samples, start, "freeze_ms"),
                },
                "ms per sample",
            )
        )
        pair.charts.append(
            chart(
                f"Send level (3 full, 2 reduced, 1 low, 0 audio only), {short_a}–{short_b}",
                {
                    f"{short_a} sends {short_b}": _levels(ab.samples, start),
                    f"{short_b} sends {short_a}": _levels(ba.samples, start),
                },
                "",
                y_max=3,
                marks=marks,
            )
        )
        pair.rows = [_row(ab, na, nb), _row(ba, nb, na)]
        pairs.append(pair)
    return pairs


def events_of(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event of the call in order, with its seconds since the first sample."""
    if not samples:
        return []
    start = min(s["at"] for s in samples)
    return [
        {
            "s": round((s["at"] - start).total_seconds(), 1),
            "at": s["at"],
            "from_peer": s["from_peer"],
            "to_peer": s["to_peer"],
            "event": event,
        }
        for s in samples
        for event in s.get("events") or []
    ]
