"""Queues between the tasks of a connection: one side puts, one task waits and takes.

One consumer. ``put`` never blocks and never yields; ``get`` takes an item that is
already queued at once, without a pass through the event loop, and otherwise waits for one.
Per item this costs one task switch less than an anyio memory object stream, whose
``receive`` always passes through the event loop first. ``EventQueue`` carries a driver's
events to the steps; ``HandOff`` is the same queue for any item.

A queue made with ``room`` lets its producer wait with ``wait_for_room()`` while that many
items are unread: a reader that waits there before reading the socket again stops a peer that
floods a scenario which is sleeping from growing memory (TCP back-pressure does the rest).
Once the queue was full, the producer goes on when half of it has been taken, not at every
item: a reader behind a busy script then reads in bursts rather than one event per wake-up.

Queues are small when idle (a server holds one per connection, thousands at a time): an
empty queue holds no buffer, and on asyncio a waiting side holds a bare future and, with a
timeout, a timer, rather than an event and a cancel scope.
"""

from __future__ import annotations

import asyncio
import math
from typing import Generic, TypeVar

import anyio

from wscenario.core.events import Event

T = TypeVar("T")

READ_AHEAD = 256
"""Unread events a client driver holds before it stops reading from the socket."""


COMPACT_AT = 64
"""Taken items a queue that is never quite empty keeps slots for before it compacts."""


class Wakeup:
    """A one-shot signal one task waits for and any code sets, without yielding.

    On asyncio a bare future (plus a timer for a timeout); elsewhere an ``anyio.Event``.
    """

    __slots__ = ("_event", "_future")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self._event: anyio.Event | None = None
        try:
            self._future = asyncio.get_running_loop().create_future()
        except RuntimeError:
            self._event = anyio.Event()

    def set(self) -> None:
        """Wake the waiting task (once; later calls do nothing)."""
        future = self._future
        if future is not None:
            if not future.done():
                future.set_result(None)
        elif self._event is not None:
            self._event.set()

    async def wait(self, within: float = math.inf) -> None:
        """Wait until ``set()``, or at most ``within`` seconds."""
        future = self._future
        if future is None:
            assert self._event is not None
            with anyio.move_on_after(within):
                await self._event.wait()
            return
        if within == math.inf:
            await future
            return
        timer = future.get_loop().call_later(within, _expire, future)
        try:
            await future
        finally:
            timer.cancel()


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class HandOff(Generic[T]):
    """Items in the order they were put; after ``close`` the ones left, then nothing."""

    __slots__ = ("_arrived", "_closed", "_freed", "_head", "_items", "_resume", "_room")

    def __init__(self, room: int | None = None) -> None:
        self._items: list[T | None] = []  # taken ones before _head; emptied when all are taken
        self._head = 0
        self._arrived: Wakeup | None = None  # set by put or close while get waits
        self._closed = False
        self._room = room
        self._resume = 0 if room is None else room // 2  # a full queue frees its producer here
        self._freed: Wakeup | None = None  # set by take or get while the producer waits

    def __len__(self) -> int:
        """How many items are waiting."""
        return len(self._items) - self._head

    def __bool__(self) -> bool:
        """Whether an item is waiting."""
        return len(self._items) > self._head

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
        """Wait while ``room`` items are unread (returns at once without a ``room``, or closed).

        Once it waited, it returns when no more than half of ``room`` are left unread.
        """
        room = self._room
        if room is None or len(self) < room:
            return
        while len(self) > self._resume and not self._closed:
            self._freed = freed = Wakeup()
            try:
                await freed.wait()
            finally:
                self._freed = None

    def _pop(self) -> T | None:
        items = self._items
        head = self._head
        if head >= len(items):
            return None
        item = items[head]
        head += 1
        if head == len(items):
            items.clear()
            head = 0
        elif head >= COMPACT_AT and head * 2 >= len(items):
            del items[:head]  # a queue never quite emptied does not grow without end
            head = 0
        else:
            items[head - 1] = None  # let the taken item go
        self._head = head
        if self._freed is not None and len(items) - head <= self._resume:
            self._freed.set()
        return item

    async def get(self, within: float = math.inf) -> T | None:
        """The next item, or ``None`` if none comes within ``within`` seconds or none will."""
        if len(self._items) <= self._head and not self._closed and within > 0:
            self._arrived = arrived = Wakeup()
            try:
                await arrived.wait(within)
            finally:
                self._arrived = None
        return self._pop()


class EventQueue(HandOff[Event]):
    """A driver's events, in the order they happened."""

    __slots__ = ()
