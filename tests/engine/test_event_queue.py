"""Tests for engine.event_queue: order, waiting, timeouts and closing."""

from __future__ import annotations

import anyio
import pytest

from wscenario.core.events import Event
from wscenario.engine import event_queue
from wscenario.engine.event_queue import EventQueue, HandOff

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True, params=["future", "anyio event"])
def waiting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Waits as on asyncio (a bare future and a timer) and as on other anyio backends."""
    if request.param == "anyio event":
        monkeypatch.setattr(event_queue, "asyncio_loop", lambda: None)
    return str(request.param)


def _event(name: str) -> Event:
    return Event(name, None, 0.0)


async def test_events_come_out_in_the_order_they_were_put() -> None:
    queue = EventQueue()
    for name in ("open", "message", "close"):
        queue.put(_event(name))
    assert [(await queue.get(1.0)) for _ in range(3)] == [
        _event("open"),
        _event("message"),
        _event("close"),
    ]


async def test_get_waits_for_an_event_put_by_another_task() -> None:
    queue = EventQueue()
    async with anyio.create_task_group() as tasks:

        async def later() -> None:
            await anyio.sleep(0.01)
            queue.put(_event("message"))

        tasks.start_soon(later)
        assert await queue.get(5.0) == _event("message")


async def test_get_gives_none_when_nothing_comes_in_time() -> None:
    queue = EventQueue()
    start = anyio.current_time()
    assert await queue.get(0.02) is None
    assert anyio.current_time() - start >= 0.015
    queue.put(_event("late"))  # an event after the timeout is kept for the next get
    assert await queue.get(0.0) == _event("late")


async def test_a_closed_queue_gives_what_is_left_then_none_and_takes_nothing_more() -> None:
    queue = EventQueue()
    queue.put(_event("close"))
    queue.close()
    queue.put(_event("ignored"))
    assert await queue.get(5.0) == _event("close")
    with anyio.fail_after(1):
        assert await queue.get(5.0) is None


async def test_closing_wakes_a_waiting_get() -> None:
    queue = EventQueue()
    async with anyio.create_task_group() as tasks:

        async def close_later() -> None:
            await anyio.sleep(0.01)
            queue.close()

        tasks.start_soon(close_later)
        with anyio.fail_after(5):
            assert await queue.get(10.0) is None


async def test_a_cancelled_get_loses_no_event() -> None:
    queue = EventQueue()
    with anyio.move_on_after(0.01):
        await queue.get(10.0)
    queue.put(_event("message"))
    assert await queue.get(0.0) == _event("message")


async def test_a_hand_off_gives_any_item_and_take_never_waits() -> None:
    queue: HandOff[int] = HandOff()
    assert not queue
    assert queue.take() is None
    queue.put(1)
    queue.put(2)
    assert queue
    assert queue.take() == 1
    assert await queue.get() == 2
    assert not queue


async def test_get_without_a_limit_waits_until_an_item_or_the_close() -> None:
    queue: HandOff[str] = HandOff()
    got: list[str | None] = []

    async def take_two() -> None:
        got.append(await queue.get())
        got.append(await queue.get())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(take_two)
        await anyio.sleep(0.01)
        assert got == []
        queue.put("x")
        await anyio.sleep(0.01)
        assert got == ["x"]
        queue.close()
    assert got == ["x", None]


async def test_the_producer_waits_for_room_until_an_item_is_taken() -> None:
    queue: HandOff[int] = HandOff(room=2)
    queue.put(1)
    await queue.wait_for_room()  # one unread of two: room left
    queue.put(2)
    assert len(queue) == 2
    waited: list[str] = []

    async def producer() -> None:
        await queue.wait_for_room()
        waited.append("room")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(producer)
        await anyio.sleep(0.05)
        assert waited == []  # full: the producer waits
        assert queue.take() == 1
    assert waited == ["room"]


async def test_closing_releases_a_producer_waiting_for_room() -> None:
    queue: HandOff[int] = HandOff(room=1)
    queue.put(1)
    with anyio.fail_after(1):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(queue.wait_for_room)
            await anyio.sleep(0.01)
            queue.close()


async def test_a_queue_without_room_never_makes_the_producer_wait() -> None:
    queue: HandOff[int] = HandOff()
    for item in range(1000):
        queue.put(item)
    with anyio.fail_after(1):
        await queue.wait_for_room()
    assert len(queue) == 1000


async def test_a_producer_that_waited_for_room_goes_on_once_half_is_taken() -> None:
    queue: HandOff[int] = HandOff(room=4)
    for item in range(4):
        queue.put(item)
    resumed: list[int] = []

    async def producer() -> None:
        await queue.wait_for_room()
        resumed.append(len(queue))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(producer)
        await anyio.sleep(0.01)
        assert queue.take() == 0
        await anyio.sleep(0.01)
        assert resumed == []  # three of four unread: still waiting
        assert queue.take() == 1
    assert resumed == [2]


async def test_a_queue_that_never_empties_keeps_its_order_and_does_not_grow() -> None:
    queue: HandOff[int] = HandOff()
    queue.put(0)
    for item in range(1, 10_000):
        queue.put(item)
        assert queue.take() == item - 1
    assert len(queue) == 1
    assert len(queue._items) < 200  # taken items are not kept
    assert await queue.get(0.0) == 9_999


async def test_a_get_waiting_with_a_timeout_is_woken_by_a_put() -> None:
    queue: HandOff[str] = HandOff()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_put_later, queue, "x")
        with anyio.fail_after(1):
            assert await queue.get(30.0) == "x"


async def test_a_get_cancelled_from_outside_while_waiting_raises_and_keeps_items() -> None:
    queue: HandOff[str] = HandOff()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:

            async def cancel_soon() -> None:
                await anyio.sleep(0.01)
                scope.cancel()

            tasks.start_soon(cancel_soon)
            await queue.get(30.0)
            pytest.fail("the get should have been cancelled")
    assert scope.cancelled_caught
    queue.put("kept")
    assert queue.take() == "kept"


async def _put_later(queue: HandOff[str], item: str) -> None:
    await anyio.sleep(0.01)
    queue.put(item)


async def test_each_get_keeps_its_own_timeout_whatever_the_gets_before_it() -> None:
    queue: HandOff[str] = HandOff()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_put_later, queue, "early")
        assert await queue.get(0.02) == "early"  # woken before its 20 ms were up
    async with anyio.create_task_group() as tasks:

        async def put_after_the_first_deadline() -> None:
            await anyio.sleep(0.1)
            queue.put("late")

        tasks.start_soon(put_after_the_first_deadline)
        assert await queue.get(5.0) == "late"  # the 20 ms of the get before do not end it
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_put_later, queue, "kept")
        assert await queue.get(30.0) == "kept"
    start = anyio.current_time()
    with anyio.fail_after(2):
        assert await queue.get(0.05) is None  # not the 30 s of the get before
    assert anyio.current_time() - start >= 0.04


async def test_put_says_when_the_producer_should_wait_for_room() -> None:
    queue: HandOff[int] = HandOff(room=2)
    assert queue.put(1) is False
    assert queue.put(2) is True  # two of two unread: wait before reading on
    assert queue.take() == 1
    assert queue.put(3) is True
    unbounded: HandOff[int] = HandOff()
    assert not any(unbounded.put(item) for item in range(1000))
    unbounded.close()
    assert unbounded.put(1000) is False  # ignored
    assert len(unbounded) == 1000


async def test_a_timer_left_by_an_earlier_timed_get_does_not_end_an_untimed_one() -> None:
    queue = HandOff[str]()
    async with anyio.create_task_group() as tasks:

        async def put_soon() -> None:
            await anyio.sleep(0.02)
            queue.put("early")

        tasks.start_soon(put_soon)
        assert await queue.get(0.1) == "early"  # woken before its timer fires at 0.1 s

        async def put_late() -> None:
            await anyio.sleep(0.3)  # after the earlier get's timer
            queue.put("late")

        tasks.start_soon(put_late)
        with anyio.fail_after(2):
            assert await queue.get() == "late"


async def test_a_quiet_put_leaves_a_waiting_get_asleep_until_a_put_that_wakes() -> None:
    queue: HandOff[str] = HandOff()
    got: list[str | None] = []

    async def consume() -> None:
        got.append(await queue.get())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        queue.put("taken by the producer", wake=False)
        await anyio.wait_all_tasks_blocked()
        assert got == []  # the consumer was not woken
        assert queue.take() == "taken by the producer"
        queue.put("for the consumer")
    assert got == ["for the consumer"]
