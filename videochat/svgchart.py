"""Small line charts as inline SVG, for the HTML reports of bench/ and the network lab
(a report opens anywhere with no plotting library)."""

from __future__ import annotations

import html
from collections.abc import Sequence

COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4"]


def svg_chart(
    title: str,
    lines: dict[str, list[tuple[float, float]]],
    *,
    unit: str,
    mark: float | None = None,
    marks: Sequence[tuple[float, str]] = (),
    x_max: float | None = None,
    y_max: float | None = None,
    width: int = 720,
    height: int = 220,
) -> str:
    """A line chart, x in seconds. ``mark`` draws one dashed line labelled "kill";
    ``marks`` draws (x, label) dashed lines (phase changes). ``y_max`` fixes the scale."""
    pad = 44
    points = [p for line in lines.values() for p in line]
    top_x = x_max or max((x for x, _ in points), default=1) or 1
    top_y = y_max or max((y for _, y in points), default=1) or 1

    def sx(x: float) -> float:
        return pad + (width - 2 * pad) * x / top_x

    def sy(y: float) -> float:
        return height - pad + (2 * pad - height) * min(y, top_y) / top_y

    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{pad}" y="18" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#888"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
        f'<text x="4" y="{pad + 4}" font-size="11">{top_y:.0f} {html.escape(unit)}</text>',
        f'<text x="{width - pad - 20}" y="{height - pad + 16}" font-size="11">{top_x:.0f} s</text>',
    ]
    all_marks = [*marks, *([(mark, "kill")] if mark is not None else [])]
    for x, label in all_marks:
        parts.append(
            f'<line x1="{sx(x):.1f}" y1="{pad}" x2="{sx(x):.1f}" y2="{height - pad}" '
            'stroke="#000" stroke-dasharray="4 3"/>'
            f'<text x="{sx(x) + 4:.1f}" y="{pad + 10}" font-size="11">{html.escape(label)}</text>'
        )
    for i, (name, line) in enumerate(lines.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
        )
        parts.append(
            f'<text x="{width - pad - 120}" y="{pad + 14 * i}" font-size="11" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
