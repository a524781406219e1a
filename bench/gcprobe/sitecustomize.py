"""Logs every garbage collection of a Python process: put this folder on PYTHONPATH.

    GC_PROBE_DIR=/tmp/gc PYTHONPATH=bench/gcprobe .venv/bin/python bench/chat_fanout.py ...

Each process started with it (daphne inherits the environment) appends lines
``<unix time> <generation> <pause ms> <objects collected>`` to
``GC_PROBE_DIR/<daphne|other>-<pid>.log``. Without GC_PROBE_DIR it does nothing.
"""

import gc
import os
import time

_dir = os.environ.get("GC_PROBE_DIR")
if _dir:
    with open("/proc/self/cmdline", "rb") as _cmdline:
        _kind = "daphne" if b"daphne" in _cmdline.read() else "other"
    _log = open(os.path.join(_dir, f"{_kind}-{os.getpid()}.log"), "a", buffering=1)  # noqa: SIM115
    _started = [0.0]

    def _probe(phase: str, info: dict) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - _started[0]) * 1000
        _log.write(f"{time.time():.3f} {info['generation']} {pause_ms:.3f} {info['collected']}\n")

    gc.callbacks.append(_probe)
