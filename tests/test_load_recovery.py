"""bench/load_recovery.py, the load and recovery run users can run, works end to end:
a short run through HAProxy with a node killed mid-run keeps the contract and
writes its report; bad arguments are refused with a message."""

import json
import os
import subprocess
import sys

import pytest

from videochat.devstack import BASE_DIR

pytestmark = [pytest.mark.live, pytest.mark.fault]


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    # No MongoDB where the environment points: the run starts its own, as it must
    # on a user's machine (the suite's devstack exports its private one).
    env = {**os.environ, "MONGODB_URI": "mongodb://127.0.0.1:1/"}
    return subprocess.run(
        [sys.executable, "bench/load_recovery.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_short_run_with_a_node_killed_keeps_the_contract_and_reports(tmp_path):
    report = tmp_path / "report.html"
    result = run(
        *("--rooms", "2", "--per-room", "3", "--rate", "2", "--seconds", "4"),
        *("--kill", "node", "--kill-at", "1.5", "--report", str(report)),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(report.with_suffix(".json").read_text())["summary"]
    assert summary["contract"].startswith("held")
    assert summary["sent"] == summary["acked"] == 6 * 8
    assert summary["killed"].startswith("node on port")
    assert summary["clients_moved"] >= 1
    page = report.read_text()
    assert page.count("<svg") == 4 and "Delivery latency" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kill", "node", "--nodes", "1"], "--kill node needs --nodes 2 or more"),
        (["--rate", "0"], "--rate must be in (0, 50]"),
        (["--kill", "everything"], "invalid choice"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(args, message):
    result = run(*args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
