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
from collections.abc import Awaitable
from typing import Generic, TypeVar

import anyio

from wscenario.core.events import Event

T = TypeVar("T")

READ_AHEAD = 256
"""Unread events a client driver holds before it stops reading from the socket."""


COMPACT_AT = 64
"""Taken items a queue that is never quite empty keeps slots for before it compacts."""


def asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio event loop; ``None`` under another anyio backend."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class HandOff(Generic[T]):
    """Items in the order they were put; after ``close`` the ones left, then nothing."""

    __slots__ = (
        "_arrived",
        "_closed",
        "_freed",
        "_head",
        "_items",
        "_resume",
        "_room",
        "_timer",
        "_timer_at",
    )

    def __init__(self, room: int | None = None) -> None:
        self._items: list[T | None] = []  # taken ones before _head; emptied when all are taken
        self._head = 0
        self._arrived: asyncio.Future[None] | anyio.Event | None = None  # put or close sets it
        self._closed = False
        self._room = room
        self._resume = 0 if room is None else room // 2  # a full queue frees its producer here
        self._freed: asyncio.Future[None] | anyio.Event | None = None  # taking sets it
        self._timer: asyncio.TimerHandle | None = None  # ends a get that waits too long
        self._timer_at = 0.0

    def __len__(self) -> int:
        """How many items are waiting."""
        return len(self._items) - self._head

    def __bool__(self) -> bool:
        """Whether an item is waiting."""
        return len(self._items) > self._head

    def put(self, item: T, *, wake: bool = True) -> bool:
        """Queue ``item`` (ignored once the queue is closed); whether ``room`` items are unread.

        A producer that gets ``True`` should ``wait_for_room()`` before it reads on. With
        ``wake=False`` a waiting ``get`` is not woken: for a producer that takes the item
        itself (``take``) before it next waits, which spares the consumer a useless wake-up.
        """
        if self._closed:
            return False
        items = self._items
        items.append(item)
        if wake and self._arrived is not None:
            _wake(self._arrived)
        return self._room is not None and len(items) - self._head >= self._room

    def close(self) -> None:
        """No more items: ``get`` returns the ones left, then ``None`` at once."""
        self._closed = True
        _wake(self._arrived)
        _wake(self._freed)
        if self._timer is not None:
            self._timer.cancel()  # a closed queue holds no timer: nothing waits any more
            self._timer = None

    async def wait_for_room(self) -> None:
        """Wait while ``room`` items are unread (returns at once without a ``room``, or closed).

        Once it waited, it returns when no more than half of ``room`` are left unread.
        """
        room = self._room
        if room is None or len(self) < room:
            return
        while len(self) > self._resume and not self._closed:
            loop = asyncio_loop()
            if loop is None:
                self._freed = event = anyio.Event()
                waiting: Awaitable[object] = event.wait()
            else:
                self._freed = waiting = loop.create_future()
            try:
                await waiting
            finally:
                self._freed = None

    def take(self) -> T | None:
        """The next item if one is waiting, else ``None``; never waits."""
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
            _wake(self._freed)
        return item

    async def get(self, within: float = math.inf) -> T | None:
        """The next item, or ``None`` if none comes within ``within`` seconds or none will."""
        if len(self._items) <= self._head and not self._closed and within > 0:
            loop = asyncio_loop()
            if loop is None:
                await self._wait_for_event(within)
            else:
                await self._wait_for_future(loop, within)
        return self.take()

    async def _wait_for_future(self, loop: asyncio.AbstractEventLoop, within: float) -> None:
        """Wait for a put or the close; on asyncio a bare future and a timer kept across waits.

        A timer set for an earlier deadline is kept: when it fires before this wait's own
        deadline, the wait goes on with one for its own. Waits with later and later deadlines
        (a script polling for events) then set one timer per deadline passed, not one each.
        """
        deadline = loop.time() + within
        while True:
            self._arrived = arrived = loop.create_future()
            if within != math.inf and (self._timer is None or self._timer_at > deadline):
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(deadline, self._ring)
                self._timer_at = deadline
            try:
                await arrived
            finally:
                self._arrived = None
            if self or self._closed or (within != math.inf and loop.time() >= deadline):
                return  # else an earlier wait's timer rang: wait on

    async def _wait_for_event(self, within: float) -> None:
        self._arrived = arrived = anyio.Event()
        try:
            with anyio.move_on_after(within):
                await arrived.wait()
        finally:
            self._arrived = None

    def _ring(self) -> None:
        self._timer = None
        _wake(self._arrived)


def _wake(waiting: asyncio.Future[None] | anyio.Event | None) -> None:
    """Let the task waiting on ``waiting`` go on (nothing if it has already been woken)."""
    if isinstance(waiting, asyncio.Future):
        if not waiting.done():
            waiting.set_result(None)
    elif waiting is not None:
        waiting.set()


class EventQueue(HandOff[Event]):
    """A driver's events, in the order they happened."""

    __slots__ = ()
