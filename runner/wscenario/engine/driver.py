"""The seam between the step runner and a live connection.

The step runner (``engine.steps``) executes a scenario's steps against a ``Driver``: it makes
calls and consumes events, and never knows whether it talks to the ohos emulation, the raw
protocol client, or one connection of the fake server. Arguments arrive already rendered
(templates substituted, payloads encoded).
"""

from __future__ import annotations

from typing import Protocol

from wscenario.core.events import CallError, Event
from wscenario.core.model import ConnectOptions, RawFrame


class Driver(Protocol):
    """One side of one WebSocket connection, as a scenario drives it."""

    async def connect(self, url: str, options: ConnectOptions) -> CallError | None:
        """Client: start connecting; ``None`` when the call succeeds."""

    async def send(
        self,
        data: str | bytes,
        *,
        fragments: int = 1,
        fragment_delay: float = 0.0,
        ping_between: bool = False,
    ) -> CallError | None:
        """Send one message (fragmenting it only where the side allows)."""

    async def close(
        self, code: int | None, reason: str | None, *, no_payload: bool = False
    ) -> CallError | None:
        """Start the closing handshake (``None`` code/reason: the side's defaults)."""

    async def ping(self, data: bytes) -> None:
        """Send a ping (a fake server, or a raw-profile client)."""

    async def drop(self, *, rst: bool) -> None:
        """Cut TCP without a close frame (a fake server, or a raw-profile client)."""

    async def write_frames(self, frames: tuple[RawFrame, ...]) -> None:
        """Write raw frames as described, for fault injection (a fake server, or a raw client)."""

    async def stop_reading(self) -> None:
        """Server: stop reading from the socket."""

    async def next_event(self, within: float) -> Event | None:
        """The next event, or ``None`` if none arrives within ``within`` seconds."""

    async def flush(self) -> None:
        """Write whatever the side held back; the script is about to wait on its own."""
