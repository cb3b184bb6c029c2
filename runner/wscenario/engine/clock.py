"""The event loop's own clock, read without anyio's per-call backend lookup.

``anyio.current_time()`` finds the running backend on every call; on asyncio it then returns
``loop.time()``. Code that reads the time several times per message takes the loop's bound
``time`` method once instead: the same clock, so deadlines and anyio timeouts agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio


def loop_clock() -> Callable[[], float]:
    """The running event loop's clock (``anyio.current_time`` outside asyncio)."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:
        return anyio.current_time
