"""A scripted ``Driver`` for step-runner tests: no sockets, every call recorded."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import anyio

from wscenario.core.events import CallError, Event, EventValue
from wscenario.core.model import ConnectOptions, RawFrame

Reaction = Callable[[str | bytes], list[Event]]


class ScriptedDriver:
    """Events are pushed by the test (now or later); calls are recorded and answered.

    ``results`` holds the outcome of the next calls, by call name (default: success);
    ``on_send`` turns a sent message into events (an echo, say).
    """

    def __init__(self, on_send: Reaction | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.results: dict[str, deque[CallError | None]] = {}
        self.on_send = on_send
        self._queue: deque[Event] = deque()
        self._arrived = anyio.Event()

    def push(self, name: str, value: EventValue = None) -> None:
        """Make an event available now."""
        self._deliver(Event(name, value, anyio.current_time()))

    def _deliver(self, event: Event) -> None:
        self._queue.append(event)
        self._arrived.set()

    async def push_later(self, delay: float, name: str, value: EventValue = None) -> None:
        """Make an event available after ``delay`` seconds (run it as a task)."""
        await anyio.sleep(delay)
        self.push(name, value)

    def answer(self, call: str, *outcomes: CallError | None) -> None:
        """Script the outcomes of the next ``call`` calls."""
        self.results.setdefault(call, deque()).extend(outcomes)

    def _outcome(self, call: str) -> CallError | None:
        queue = self.results.get(call)
        return queue.popleft() if queue else None

    async def connect(self, url: str, options: ConnectOptions) -> CallError | None:
        self.calls.append(("connect", (url, options)))
        return self._outcome("connect")

    async def send(
        self,
        data: str | bytes,
        *,
        fragments: int = 1,
        fragment_delay: float = 0.0,
        ping_between: bool = False,
    ) -> CallError | None:
        self.calls.append(("send", data))
        outcome = self._outcome("send")
        if outcome is None and self.on_send is not None:
            for event in self.on_send(data):
                self._deliver(event)
        return outcome

    async def close(
        self, code: int | None, reason: str | None, *, no_payload: bool = False
    ) -> CallError | None:
        self.calls.append(("close", (code, reason, no_payload)))
        return self._outcome("close")

    async def ping(self, data: bytes) -> None:
        self.calls.append(("ping", data))

    async def drop(self, *, rst: bool) -> None:
        self.calls.append(("drop", rst))

    async def write_frames(self, frames: tuple[RawFrame, ...]) -> None:
        self.calls.append(("frames", frames))

    async def stop_reading(self) -> None:
        self.calls.append(("stopReading", None))

    async def flush(self) -> None:
        self.calls.append(("flush", None))

    async def next_event(self, within: float) -> Event | None:
        with anyio.move_on_after(within):
            while not self._queue:
                self._arrived = anyio.Event()
                await self._arrived.wait()
        return self._queue.popleft() if self._queue else None

    def sent(self) -> list[object]:
        """The data of every ``send`` call, in order."""
        return [value for call, value in self.calls if call == "send"]


def echo(data: str | bytes) -> list[Event]:
    """Answer a sent message with the same message."""
    return [Event("message", data)]
