"""Queues between the tasks of a connection: one side puts, one task waits and takes.

Unbounded, one consumer. ``put`` never blocks and never yields; ``get`` takes an item that is
already queued at once, without a pass through the event loop, and otherwise waits for one.
Per item this costs one task switch less than an anyio memory object stream, whose
``receive`` always passes through the event loop first. ``EventQueue`` carries a client
driver's events to the steps; ``HandOff`` is the same queue for any item.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeVar

import anyio

from wscenario.core.events import Event

T = TypeVar("T")


class HandOff(Generic[T]):
    """Items in the order they were put; after ``close`` the ones left, then nothing."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._arrived: anyio.Event | None = None  # set by put or close while get waits
        self._closed = False

    def __bool__(self) -> bool:
        """Whether an item is waiting."""
        return bool(self._items)

    def put(self, item: T) -> None:
        """Queue ``item`` (ignored once the queue is closed)."""
        if not self._closed:
            self._items.append(item)
            if self._arrived is not None:
                self._arrived.set()

    def close(self) -> None:
        """No more items: ``get`` returns the ones left, then ``None`` at once."""
        self._closed = True
        if self._arrived is not None:
            self._arrived.set()

    def take(self) -> T | None:
        """The next item if one is waiting, else ``None``; never waits."""
        return self._items.popleft() if self._items else None

    async def get(self, within: float = math.inf) -> T | None:
        """The next item, or ``None`` if none comes within ``within`` seconds or none will."""
        if not self._items and not self._closed:
            self._arrived = arrived = anyio.Event()
            try:
                if within == math.inf:
                    await arrived.wait()
                else:
                    with anyio.move_on_after(within):
                        await arrived.wait()
            finally:
                self._arrived = None
        return self._items.popleft() if self._items else None


class EventQueue(HandOff[Event]):
    """A client driver's events, in the order they happened."""
