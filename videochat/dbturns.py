"""Hot writers from several processes take turns on SQLite through an OS file lock.

SQLite has one write lock per database file. A writer that finds it taken
waits in SQLite's busy handler, which polls with sleeps growing to 100 ms, so
with two busy writers (``WEB_WORKERS=2``, both group-committing chat) the
one that lost can sleep through several of the other's commits. A blocking
``flock`` wakes the waiter as soon as the holder releases it. Writers that do
not take a turn (admin, Celery, rq) still get in through the busy handler.

On other databases this does nothing: they lock rows, not the database.

The wait has no timeout (a thread cannot be interrupted in ``flock``): a
writer that hangs while holding its turn, e.g. a stopped process, stalls the
other workers' chat writes until it goes on or dies (the kernel then drops
its lock). SQLite's own timeout (20 s) would have failed them instead.
"""

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabase

_files = threading.local()


def _lock_file(path: str) -> IO[bytes]:
    files: dict[str, IO[bytes]] = _files.__dict__.setdefault("by_path", {})
    if path not in files:
        # One open file per thread: flock is held per open file, so two threads
        # sharing one would both "hold" it at once.
        files[path] = open(path, "ab")  # noqa: SIM115 - kept open for the thread's life
    return files[path]


@contextmanager
def write_turn(using: str = "default") -> Iterator[None]:
    """Hold this database's writers' turn (SQLite file databases only)."""
    connection = connections[using]
    name = str(connection.settings_dict["NAME"])
    # Inside a transaction already begun, the turn would come too late to
    # help (and a test's wrapping transaction holds the database anyway).
    sqlite_file = isinstance(connection, SQLiteDatabase) and not connection.is_in_memory_db()
    if not sqlite_file or connection.in_atomic_block:
        yield
        return
    lock = _lock_file(f"{name}.writers")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
