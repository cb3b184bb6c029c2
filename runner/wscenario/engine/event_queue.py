"""The queue between a client driver's connection and the steps that wait for its events.

Unbounded, one consumer. ``put`` never blocks and never yields; ``get`` takes an event that is
already queued at once, without a pass through the event loop, and otherwise waits for one.
Per message this costs one task switch less than an anyio memory object stream, whose
``receive`` always passes through the event loop first.
"""

from __future__ import annotations

from collections import deque

import anyio

from wscenario.core.events import Event


class EventQueue:
    """Events in the order they were put; after ``close`` the ones left, then nothing."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._arrived: anyio.Event | None = None  # set by put or close while get waits
        self._closed = False

    def put(self, event: Event) -> None:
        """Queue ``event`` (ignored once the queue is closed)."""
        if not self._closed:
            self._events.append(event)
            if self._arrived is not None:
                self._arrived.set()

    def close(self) -> None:
        """No more events: ``get`` returns the ones left, then ``None`` at once."""
        self._closed = True
        if self._arrived is not None:
            self._arrived.set()

    async def get(self, within: float) -> Event | None:
        """The next event, or ``None`` if none comes within ``within`` seconds or none will."""
        if not self._events and not self._closed:
            self._arrived = arrived = anyio.Event()
            try:
                with anyio.move_on_after(within):
                    await arrived.wait()
            finally:
                self._arrived = None
        return self._events.popleft() if self._events else None
