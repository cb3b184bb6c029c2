"""Whether a task lets the others run: count another task's passes through the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel


@asynccontextmanager
async def loop_turns() -> AsyncIterator[Callable[[], int]]:
    """Run a task that counts its turns; yields how many it has had so far."""
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            turns += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(other)
        await anyio.lowlevel.checkpoint()
        yield lambda: turns
        tasks.cancel_scope.cancel()
