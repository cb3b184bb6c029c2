"""Queues between the tasks of a connection: one side puts, one task waits and takes.

One consumer. ``put`` never blocks and never yields; ``get`` takes an item that is
already queued at once, without a pass through the event loop, and otherwise waits for one.
Per item this costs one task switch less than an anyio memory object stream, whose
``receive`` always passes through the event loop first. ``EventQueue`` carries a client
driver's events to the steps; ``HandOff`` is the same queue for any item.

A queue made with ``room`` lets its producer wait with ``wait_for_room()`` while that many
items are unread: a reader that waits there before reading the socket again stops a peer that
floods a scenario which is sleeping from growing memory (TCP back-pressure does the rest).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeVar

import anyio

from wscenario.core.events import Event

T = TypeVar("T")

READ_AHEAD = 256
"""Unread events a client driver holds before it stops reading from the socket."""


class HandOff(Generic[T]):
    """Items in the order they were put; after ``close`` the ones left, then nothing."""

    def __init__(self, room: int | None = None) -> None:
        self._items: deque[T] = deque()
        self._arrived: anyio.Event | None = None  # set by put or close while get waits
        self._closed = False
        self._room = room
        self._freed: anyio.Event | None = None  # set by take or get while the producer waits

    def __len__(self) -> int:
        """How many items are waiting."""
        return len(self._items)

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
        for waiting in (self._arrived, self._freed):
            if waiting is not None:
                waiting.set()

    def take(self) -> T | None:
        """The next item if one is waiting, else ``None``; never waits."""
        return self._pop()

    async def wait_for_room(self) -> None:
        """Wait while ``room`` items are unread (returns at once without a ``room``, or closed)."""
        while self._room is not None and len(self._items) >= self._room and not self._closed:
            self._freed = freed = anyio.Event()
            try:
                await freed.wait()
            finally:
                self._freed = None

    def _pop(self) -> T | None:
        if not self._items:
            return None
        item = self._items.popleft()
        if self._freed is not None:
            self._freed.set()
        return item

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
        return self._pop()


class EventQueue(HandOff[Event]):
    """A client driver's events, in the order they happened."""
