"""The event loop clock agrees with anyio's."""

from __future__ import annotations

import anyio
import pytest

from wscenario.engine.clock import loop_clock


@pytest.mark.anyio
async def test_the_loop_clock_reads_what_anyio_reads() -> None:
    clock = loop_clock()
    before = anyio.current_time()
    now = clock()
    after = anyio.current_time()
    assert before <= now <= after
    await anyio.sleep(0.01)
    assert clock() - now >= 0.009


def test_outside_a_loop_the_clock_is_anyios() -> None:
    assert loop_clock() is anyio.current_time
