"""The log lines an exception leaves, in production (JSON) and development (console)."""

import json
import subprocess
import sys

from videochat.devstack import BASE_DIR

# In a child process: configuring logging here would change the test session's own.
_LOG_TWO_FAILURES = """
import logging, structlog, sys
from videochat.logging import configure_logging
configure_logging(level="INFO", json=sys.argv[1] == "json")
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("rooms.consumers").exception("room.socket_failed", message_type="x")
try:
    {}["gone"]
except KeyError:
    logging.getLogger("daphne.server").error("Exception inside application", exc_info=True)
"""


def log_two_failures(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _LOG_TWO_FAILURES, mode],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr


def test_json_lines_carry_the_traceback_of_ours_and_of_other_libraries():
    ours, daphnes = [json.loads(line) for line in log_two_failures("json").splitlines()]
    assert ours["event"] == "room.socket_failed"
    assert "exc_info" not in ours and "exc_info" not in daphnes
    assert ours["exception"].startswith("Traceback (most recent call last):")
    assert ours["exception"].endswith("ZeroDivisionError: division by zero")
    assert daphnes["exception"].endswith("KeyError: 'gone'")


def test_console_tracebacks_are_plain_text():
    out = log_two_failures("console")
    assert "room.socket_failed" in out and "Exception inside application" in out
    assert out.count("Traceback (most recent call last):") == 2
    # structlog's default (rich, with locals) drew boxes: about 2 s of CPU each.
    assert "╭" not in out and "locals" not in out
