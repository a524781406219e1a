"""Where prometheus-client's multiprocess files live, prepared before it is imported.

Every process of a node (the daphne workers of ``videochat.webpool``, Celery and its
children, rq and its work horses) writes its metric values to files named
``<type>_<pid>.db`` in one shared directory, and a scrape of ``/metrics`` on any
daphne worker sums them. prometheus-client decides at import whether it runs in
multiprocess mode, so ``videochat/settings.py`` calls :func:`multiproc_dir_prepare`
before anything imports it.

The rule:

- ``PROMETHEUS_MULTIPROC_DIR`` from the environment wins; whoever sets it owns it
  (e.g. a Kubernetes ``emptyDir``, new with each pod).
- Otherwise ``$VIDEOCHAT_RUN_DIR/metrics``. The first process of a new run wipes it:
  a process that finds no file of a living process there (the previous run has
  ended) deletes every file, under a lock so two processes starting together do
  not race. A process also drops live gauges left under its own pid by a dead
  process that had it before.
- Files of processes that died during the run: their counters and histograms stay
  (a counter must not go down), their live gauges (sockets open) are dropped at each
  scrape (``videochat.metricsview``), and files holding only zeros are deleted
  (an rq work horse per job would otherwise leave one each).

One directory serves one host's pid namespace: never share it between containers.
"""

import fcntl
import os
import re
from pathlib import Path

_FILE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<pid>\d+)\.db$")
LIVE_GAUGE_PREFIX = "gauge_live"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def files_by_pid(path: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    for entry in path.iterdir() if path.is_dir() else ():
        match = _FILE.match(entry.name)
        if match:
            found.setdefault(int(match["pid"]), []).append(entry)
    return found


def multiproc_dir_prepare(default: Path) -> Path:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` (unless set) and return it, created, for this run."""
    own = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(own) if own else default
    path.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    with open(path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        by_pid = files_by_pid(path)
        others_alive = any(pid != me and pid_alive(pid) for pid in by_pid)
        if not own and not others_alive:
            for files in by_pid.values():
                for f in files:
                    f.unlink(missing_ok=True)
        else:
            for f in by_pid.get(me, []):
                if f.name.startswith(LIVE_GAUGE_PREFIX):
                    f.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path
