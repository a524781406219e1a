"""The lab report's measures on a made-up run: stalls from 500 ms ticks, audio
interruptions, step-down after a cap, media back after an outage; the HTML and the
combined report are written from run folders."""

import json
import subprocess
from pathlib import Path

from netlab.lab import RunRecord, write_run
from netlab.report import _audio, _stalls, analyse, load_run, write_index

T0 = 1_000_000


def ticks(frames: list[int], *, peer="b", me="a", start=T0, audio=None):
    audio = audio or [(480 * i, 0) for i in range(len(frames))]
    return [
        {
            "from_peer": me,
            "peer": peer,
            "t": start + 500 * i,
            "frames": f,
            "a_samples": audio[i][0],
            "a_concealed": audio[i][1],
            "out_height": 360,
            "level": "full",
        }
        for i, f in enumerate(frames)
    ]


def test_a_stall_is_the_time_without_a_new_frame_less_one_tick():
    # Frames rise every tick, stop for 4 ticks (2 s), then rise again.
    rows = ticks([0, 15, 30, 30, 30, 30, 30, 45, 60])
    assert _stalls(rows) == [(T0 + 1000, 2000)]
    assert _stalls(ticks([0, 15, 30, 45])) == []


def test_video_off_on_purpose_is_not_a_stall():
    rows = ticks([0, 15, 30, 30, 30, 30, 30, 45, 60])
    for t in rows[3:7]:
        t["notice"] = "olivia: audio only (poor connection)"
    assert _stalls(rows) == []


def test_audio_interrupted_counts_ticks_mostly_concealed():
    audio = [(0, 0), (24000, 0), (48000, 20000), (72000, 44000), (96000, 44000)]
    conceal, interrupted = _audio(ticks([0] * 5, audio=audio))
    assert interrupted == 1000  # two ticks over half concealed
    assert round(conceal, 3) == round(44000 / 96000, 3)


def test_analyse_times_the_step_down_after_a_cap_and_media_back_after_an_outage():
    cap_at, outage_end = T0 + 5000, T0 + 9000
    a_to_b = ticks([15 * i if i < 12 or i > 18 else 165 for i in range(24)], me="b", peer="a")
    mine = ticks([15 * i for i in range(24)], me="a", peer="b")
    for t in mine:
        if t["t"] >= cap_at + 1500:
            t["out_height"] = 180
        if t["t"] >= cap_at + 3000:
            t["level"] = "reduced"
    run = {
        "profile": "made-up",
        "mode": "reactive",
        "started_ms": T0,
        "ended_ms": T0 + 12000,
        "peers": [
            {"peer": "a", "name": "peer0", "profile_peer": 0},
            {"peer": "b", "name": "peer1", "profile_peer": 1},
        ],
        "phases": [
            {"label": "clean", "start_ms": T0, "end_ms": cap_at, "paths": {}},
            {
                "label": "cap",
                "start_ms": cap_at,
                "end_ms": T0 + 6000,
                "paths": {"peer0:up": {"rate_kbps": 300}},
            },
            {
                "label": "outage",
                "start_ms": T0 + 6000,
                "end_ms": outage_end,
                "paths": {"peer0:up": {"outage": True}, "peer0:down": {"outage": True}},
            },
        ],
        "ticks": a_to_b + mine,
        "samples": [],
        "events": [{"from_peer": "a", "peer": "b", "t": T0, "event": "recover:ice-restart:x"}],
    }
    summary = analyse(run)
    assert summary["cap_step_down"] == {
        "ladder_s": 3.0,
        "ladder_level": "reduced",
        "resolution_s": 1.5,
        "resolution": "360p -> 180p",
    }
    # Video from peer0 stopped (3.5 s without a new frame) and is back 0.5 s after the outage ended.
    assert summary["links"]["peer0→peer1"]["longest_stall_ms"] == 3500
    assert summary["media_back_after_outage_s"]["peer0→peer1"] == 0.5
    assert summary["recovery"] == run["events"]


def test_run_folders_make_a_report(tmp_path):
    record = RunRecord(profile="clean", mode="off", started_ms=T0, ended_ms=T0 + 4000)
    record.peers = [
        {"peer": "a", "name": "peer0", "profile_peer": 0},
        {"peer": "b", "name": "peer1", "profile_peer": 1},
    ]
    record.phases = [
        {
            "label": "clean",
            "start_ms": T0,
            "end_ms": T0 + 4000,
            "offset_s": 0,
            "seconds": 4,
            "paths": {},
        }
    ]
    record.ticks = ticks([0, 15, 30, 45, 60, 75, 90, 105])
    record.samples = [
        {
            "from_peer": "a",
            "to_peer": "b",
            "at": T0 + 2000,
            "send_kbps": 900,
            "rtt": 3,
            "loss_in": 0,
            "loss_out": 0,
            "level": "full",
            "pred": 0.1,
        },
    ]
    write_run(record, tmp_path / "clean--off", extra={"machine": "m", "date": "d"})
    run = load_run(tmp_path / "clean--off")
    assert run["samples"] == record.samples and len(run["ticks"]) == 8
    path = write_index(tmp_path, [tmp_path / "clean--off"], command="bin/lab --profile clean")
    page = path.read_text()
    assert page.count("<svg") == 5 and "Bitrate (peer0 with peer1)" in page
    assert json.loads((tmp_path / "summary.json").read_text())[0]["profile"] == "clean"


def test_bin_lab_help_and_report_start_no_services(tmp_path):
    """``bin/lab --help`` and ``--report DIR`` answer without the devstack (which
    prints a ``devstack:`` line for each service it starts)."""
    lab = Path(__file__).resolve().parent.parent / "bin/lab"
    shown = subprocess.run([lab, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "usage: bin/lab" in shown.stdout, shown.stderr
    assert "devstack" not in shown.stdout + shown.stderr
    empty = subprocess.run(
        [lab, "--report", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert empty.returncode != 0 and "no run folders" in empty.stderr, empty.stderr
    assert "devstack" not in empty.stdout + empty.stderr
