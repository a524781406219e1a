"""What a lab run measured, and its HTML report (inline SVG plots and a summary table).

Reads a run folder (netlab/lab.py ``write_run``): the fine ticks (every 500 ms
per page and remote peer: frames decoded, audio samples and concealment, what
we send) time freezes and recovery; the 2 s samples draw the plots.
A link ``a→b`` is the media ``a`` sends and ``b`` decodes.
"""

from __future__ import annotations

import html
import json
import statistics
from pathlib import Path
from typing import Any

from videochat.svgchart import svg_chart

LEVEL_VALUE = {"full": 3, "reduced": 2, "low": 1, "audio": 0, "audio-only": 0}
STALL_MS = 1000  # a stall this long or longer counts as a freeze (the target)


def load_run(folder: Path) -> dict[str, Any]:
    def jsonl(name: str) -> list[dict[str, Any]]:
        path = folder / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    run = json.loads((folder / "run.json").read_text())
    run["samples"] = jsonl("samples.jsonl")
    run["ticks"] = jsonl("ticks.jsonl")
    run["events"] = jsonl("events.jsonl")
    run["folder"] = str(folder)
    return run


def _names(run: dict[str, Any]) -> dict[str, str]:
    return {p["peer"]: p["name"] for p in run.get("peers", [])}


def _links(run: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Ticks per link (sender, receiver), in time order, within the played window."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    lo, hi = run["started_ms"], run["ended_ms"]
    for t in sorted(run["ticks"], key=lambda t: t["t"]):
        if lo <= t["t"] <= hi:
            out.setdefault((t["peer"], t["from_peer"]), []).append(t)
    return out


def _intended(tick: dict[str, Any]) -> bool:
    """The receiver's tile says the sender sends no video on purpose (audio only, video
    off or paused): no new frame then is the ladder's choice, not a freeze."""
    notice = tick.get("notice") or ""
    return any(w in notice for w in ("audio only", "video off", "video paused"))


def _stalls(ticks: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(start_ms, length_ms) of spans with no new decoded frame, from 500 ms ticks:
    from the last tick that saw progress to the next one, less one tick interval.
    Ticks where the video is off on purpose (``_intended``) count as progress."""
    out, last_progress, prev = [], None, None
    for t in ticks:
        if prev is not None and (t["frames"] > prev["frames"] or _intended(t)):
            if last_progress is not None:
                gap = t["t"] - last_progress - (t["t"] - prev["t"])
                if gap > 0:
                    out.append((last_progress, gap))
            last_progress = t["t"]
        elif prev is None:
            last_progress = t["t"]
        prev = t
    if prev is not None and last_progress is not None and prev["t"] - last_progress > 0:
        out.append((last_progress, prev["t"] - last_progress))  # still frozen at the end
    return out


def _audio_only_ms(ticks: list[dict[str, Any]]) -> int:
    return sum(b["t"] - a["t"] for a, b in zip(ticks, ticks[1:], strict=False) if _intended(b))


def _audio(ticks: list[dict[str, Any]]) -> tuple[float, int]:
    """(concealed fraction, ms with more than half the audio concealed or none received)."""
    samples = concealed = 0
    interrupted = 0
    for a, b in zip(ticks, ticks[1:], strict=False):
        ds = max(0, b["a_samples"] - a["a_samples"])
        dc = max(0, b["a_concealed"] - a["a_concealed"])
        samples += ds
        concealed += dc
        if ds == 0 or dc / ds > 0.5:
            interrupted += b["t"] - a["t"]
    return (concealed / samples if samples else 0.0), interrupted


def _phase_starts(run: dict[str, Any], test) -> list[dict[str, Any]]:
    return [p for p in run["phases"] if test(p)]


def _peer0_paths(phase: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for k, v in phase.get("paths", {}).items() if k.startswith("peer0:")]


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    names = _names(run)
    links = _links(run)
    sender0 = next((p["peer"] for p in run.get("peers", []) if p["profile_peer"] == 0), None)
    per_link = {}
    for (sender, receiver), ticks in links.items():
        stalls = _stalls(ticks)
        long = [ms for _, ms in stalls if ms >= STALL_MS]
        conceal, interrupted = _audio(ticks)
        link_samples = [
            s
            for s in run["samples"]
            if s.get("from_peer") == receiver and s.get("to_peer", s.get("peer")) == sender
        ]
        per_link[f"{names.get(sender, sender)}→{names.get(receiver, receiver)}"] = {
            "freezes_ge_1s": len(long),
            "freeze_ms_ge_1s": sum(long),
            "longest_stall_ms": max((ms for _, ms in stalls), default=0),
            "chrome_freezes": sum(s.get("freezes") or 0 for s in link_samples),
            "chrome_freeze_ms": round(sum(s.get("freeze_ms") or 0 for s in link_samples)),
            "audio_concealed": round(conceal, 4),
            "audio_interrupted_ms": interrupted,
            "video_off_on_purpose_ms": _audio_only_ms(ticks),
            "tile_notices": sorted({t["notice"] for t in ticks if t.get("notice")}),
        }
    summary: dict[str, Any] = {
        "profile": run["profile"],
        "mode": run["mode"],
        "mode_applied": run.get("mode_applied", False),
        "links": per_link,
    }
    # Time to step down after a cap of 300 kbit/s or less on what peer 0 sends.
    caps = _phase_starts(
        run, lambda p: any((v.get("rate_kbps") or 1e9) <= 300 for v in _peer0_paths(p))
    )
    if caps and sender0:
        summary["cap_step_down"] = _step_down(run, sender0, caps[0]["start_ms"])
    outages = _phase_starts(run, lambda p: any(v.get("outage") for v in _peer0_paths(p)))
    if outages:
        end = outages[0]["end_ms"]
        backs = {}
        for (sender, receiver), ticks in links.items():
            after = [(a, b) for a, b in zip(ticks, ticks[1:], strict=False) if b["t"] >= end]
            first = next((b["t"] for a, b in after if b["frames"] > a["frames"]), None)
            backs[f"{names.get(sender, sender)}→{names.get(receiver, receiver)}"] = (
                round((first - end) / 1000, 2) if first is not None else None
            )
        summary["media_back_after_outage_s"] = backs
    summary["recovery"] = [
        e for e in run["events"] if "recover" in json.dumps(e) or "restart" in json.dumps(e)
    ][:20]
    summary["ladder_steps"] = sum(1 for e in run["events"] if "step:" in json.dumps(e))
    return summary


def _step_down(run: dict[str, Any], sender: str, at_ms: int) -> dict[str, Any]:
    """When what ``sender`` sends stepped down after ``at_ms``: its ladder level left
    full, and its encoder's resolution fell (Chrome's own bandwidth estimate)."""
    mine = sorted((t for t in run["ticks"] if t["from_peer"] == sender), key=lambda t: t["t"])
    before = [t["out_height"] for t in mine if at_ms - 10_000 <= t["t"] < at_ms and t["out_height"]]
    base = statistics.median(before) if before else None
    after = [t for t in mine if t["t"] >= at_ms]
    level = next((t for t in after if t.get("level") not in (None, "full")), None)
    height = next(
        (t for t in after if base and t.get("out_height") and t["out_height"] < base), None
    )
    return {
        "ladder_s": round((level["t"] - at_ms) / 1000, 1) if level else None,
        "ladder_level": level.get("level") if level else None,
        "resolution_s": round((height["t"] - at_ms) / 1000, 1) if height else None,
        "resolution": f"{base:.0f}p -> {height['out_height']}p" if height and base else None,
    }


def charts(run: dict[str, Any]) -> str:
    names = _names(run)
    t0 = run["started_ms"]
    x_max = max(1.0, (run["ended_ms"] - t0) / 1000)
    marks = [((p["start_ms"] - t0) / 1000, p["label"]) for p in run["phases"]]
    out = []
    by_link: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in sorted(run["samples"], key=lambda s: s["at"]):
        by_link.setdefault((s["from_peer"], s.get("to_peer", s.get("peer"))), []).append(s)
    for (me, other), rows in sorted(by_link.items()):

        def line(key: str, scale: float = 1.0, rows=rows) -> list[tuple[float, float]]:
            return [
                ((s["at"] - t0) / 1000, float(s[key]) * scale)
                for s in rows
                if isinstance(s.get(key), int | float) and s["at"] >= t0
            ]

        levels = [
            ((s["at"] - t0) / 1000, float(LEVEL_VALUE[s["level"]]))
            for s in rows
            if s.get("level") in LEVEL_VALUE and s["at"] >= t0
        ]
        who = f"{names.get(me, me)} with {names.get(other, other)}"
        common = {"marks": marks, "x_max": x_max}
        out.append(f"<h3>{html.escape(who)}</h3>")
        out.append(
            svg_chart(
                f"Bitrate ({who})",
                {
                    "send kbit/s": line("send_kbps"),
                    "recv kbit/s": line("recv_kbps"),
                    "available out": line("bw_out"),
                },
                unit="kbit/s",
                **common,
            )
        )
        out.append(svg_chart(f"RTT ({who})", {"rtt": line("rtt")}, unit="ms", **common))
        out.append(
            svg_chart(
                f"Loss ({who})",
                {"loss in %": line("loss_in", 100), "loss out %": line("loss_out", 100)},
                unit="%",
                **common,
            )
        )
        out.append(
            svg_chart(
                f"Video received ({who})",
                {"fps in": line("fps_in"), "freeze ms /100": line("freeze_ms", 0.01)},
                unit="",
                **common,
            )
        )
        out.append(
            svg_chart(
                f"Adaptation ({who}): level sent (3 full .. 0 audio), prediction x3",
                {"level": levels, "prediction x3": line("pred", 3)},
                unit="",
                y_max=3,
                **common,
            )
        )
    return "".join(out)


STYLE = (
    "<style>body{font-family:sans-serif;margin:2em;max-width:80em}"
    "th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #ddd;vertical-align:top}"
    "svg{display:block;margin:.5em 0;border:1px solid #ddd}</style>"
)


def summary_rows(summaries: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th>profile</th><th>mode</th><th>link</th><th>freezes ≥1 s</th>"
        "<th>freeze ms (≥1 s)</th><th>longest stall ms</th><th>Chrome freezes / ms</th>"
        "<th>audio concealed</th><th>audio interrupted ms</th><th>audio only ms</th>"
        "<th>receiver's tile said</th></tr>"
    )
    rows = []
    for s in summaries:
        mode = s["mode"] + ("" if s.get("mode_applied") else " (not applied: no hook)")
        for link, m in s["links"].items():
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(v))}</td>"
                    for v in (
                        s["profile"],
                        mode,
                        link,
                        m["freezes_ge_1s"],
                        m["freeze_ms_ge_1s"],
                        m["longest_stall_ms"],
                        f"{m['chrome_freezes']} / {m['chrome_freeze_ms']}",
                        f"{m['audio_concealed'] * 100:.1f} %",
                        m["audio_interrupted_ms"],
                        m.get("video_off_on_purpose_ms", 0),
                        "; ".join(m.get("tile_notices", [])),
                    )
                )
                + "</tr>"
            )
    extra = []
    for s in summaries:
        bits = []
        if "cap_step_down" in s:
            cap = json.dumps(s["cap_step_down"], ensure_ascii=False)
            bits.append(f"after the cap: {cap}")
        if "media_back_after_outage_s" in s:
            back = json.dumps(s["media_back_after_outage_s"], ensure_ascii=False)
            bits.append(f"media back after the outage (s): {back}")
        bits.append(f"ladder steps: {s['ladder_steps']}")
        if s["recovery"]:
            bits.append(f"recovery: {json.dumps(s['recovery'], ensure_ascii=False)[:600]}")
        extra.append(
            f"<li><b>{html.escape(s['profile'])} [{html.escape(s['mode'])}]</b>: "
            + html.escape("; ".join(bits))
            + "</li>"
        )
    return f"<table>{head}{''.join(rows)}</table><ul>{''.join(extra)}</ul>"


def write_run_report(folder: Path) -> dict[str, Any]:
    run = load_run(folder)
    summary = analyse(run)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    phases = "".join(
        f"<li>{p['offset_s']:.0f} s, {p['seconds']:.0f} s: {html.escape(p['label'])}"
        f" <code>{html.escape(json.dumps(p['paths']))}</code></li>"
        for p in run["phases"]
    )
    (folder / "report.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>Huddle lab: {html.escape(run['profile'])} "
        f"[{html.escape(run['mode'])}]</title>{STYLE}"
        f"<h1>Network lab: {html.escape(run['profile'])} [{html.escape(run['mode'])}]</h1>"
        f"<p>{html.escape(run.get('machine', ''))} · {html.escape(run.get('date', ''))} · "
        f"samples from {html.escape(run.get('samples_source', '?'))}</p>"
        f"{summary_rows([summary])}<h2>Phases</h2><ul>{phases}</ul>"
        f"<h2>Over time</h2>{charts(run)}"
    )
    return summary


def write_index(out: Path, folders: list[Path], *, command: str) -> Path:
    """The combined report of several runs: one summary table, then each run's plots."""
    summaries, sections = [], []
    for folder in folders:
        summary = write_run_report(folder)
        summaries.append(summary)
        run = load_run(folder)
        sections.append(
            f"<h2 id='{html.escape(folder.name)}'>{html.escape(run['profile'])} "
            f"[{html.escape(run['mode'])}]</h2>{charts(run)}"
        )
    (out / "summary.json").write_text(json.dumps(summaries, indent=1))
    path = out / "report.html"
    path.write_text(
        f"<!doctype html><meta charset=utf-8><title>Huddle network lab</title>{STYLE}"
        f"<h1>Network lab</h1><p><code>{html.escape(command)}</code></p>"
        f"<h2>Summary</h2>{summary_rows(summaries)}{''.join(sections)}"
    )
    return path
