"""The garbage collector of a server process, set once the application is loaded.

Why: once Django, the URL conf, the models, Channels and the product are
imported, about 120,000 objects are alive in a daphne worker, and they stay alive
for the life of the process. Python's full collection walks all of them
(35-120 ms on a 2-core machine here) whenever enough new objects have survived
into the oldest generation, which under chat load happens every few seconds:
those pauses were the tail of the chat p99 at 8,000 deliveries/s
(bench/RESULTS.md, "Chat p99: the garbage collector's full collections").

``gc.freeze()`` moves every object alive at that moment into a permanent
generation the collector never scans, so a full collection only walks what the
process made since (about 10 ms under the same load). Reference cycles made
later are still collected as before. The young generations are left at
Python's thresholds: their collections took at most 5 ms under that load.

``GC_FREEZE`` (environment, default 1; anything but a clear yes/no stops
start-up): 0 leaves the collector as Python sets it.
"""

from __future__ import annotations

import gc

from videochat.envvars import env_bool


def tune() -> int:
    """Freeze what is alive now unless ``GC_FREEZE=0``; returns the objects frozen.

    Called once per process, after the ASGI application is built (videochat/asgi.py).
    """
    if not env_bool("GC_FREEZE", default=True):
        return 0
    # Collect first: garbage left by the imports would otherwise be frozen too,
    # and held for the life of the process.
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
