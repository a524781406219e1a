"""cProfile a daphne process between two SIGUSR2: put this folder on PYTHONPATH.

    PROF_DIR=/tmp/prof PYTHONPATH=bench/profprobe .venv/bin/python bench/chat_fanout.py ...
    kill -USR2 <daphne pid>   # start profiling the event loop's thread
    kill -USR2 <daphne pid>   # stop; writes PROF_DIR/daphne-<pid>-<n>.prof (pstats)

Only the main thread (daphne's event loop and Twisted reactor) is profiled, not
the database thread. Without PROF_DIR it does nothing.
"""

import cProfile
import os
import signal

_dir = os.environ.get("PROF_DIR")
if _dir:
    with open("/proc/self/cmdline", "rb") as _cmdline:
        _is_daphne = b"daphne" in _cmdline.read()
    if _is_daphne:
        _state: dict = {"prof": None, "n": 0}

        def _toggle(signum: int, frame: object) -> None:
            if _state["prof"] is None:
                _state["prof"] = cProfile.Profile()
                _state["prof"].enable()
                return
            _state["prof"].disable()
            _state["n"] += 1
            name = f"daphne-{os.getpid()}-{_state['n']}.prof"
            _state["prof"].dump_stats(os.path.join(_dir, name))
            _state["prof"] = None

        signal.signal(signal.SIGUSR2, _toggle)
