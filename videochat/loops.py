"""Objects that belong to one event loop (tests run many loops; daphne runs one)."""

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter returning ``factory()``'s instance for the running loop, made on first use.

    An instance goes away with its loop, so asyncio objects (queues, futures,
    connections) are never shared between loops.
    """
    instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get() -> T:
        loop = asyncio.get_running_loop()
        instance = instances.get(loop)
        if instance is None:
            instance = instances[loop] = factory()
        return instance

    return get
