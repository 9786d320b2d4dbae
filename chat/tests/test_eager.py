"""chat.eager: a coroutine run in place until it first waits, then finished by a task."""

from __future__ import annotations

import asyncio

import pytest

from chat import eager


async def test_a_coroutine_that_never_waits_runs_to_its_end_in_place():
    """start() returns None and the coroutine's effects are already there."""
    done = []

    async def quick():
        done.append(1)

    assert eager.start(quick()) is None
    assert done == [1]


async def test_a_coroutine_that_waits_is_finished_by_awaiting_what_start_returns():
    """The part before the wait runs at once; awaiting the rest resumes it with its result."""
    gate = asyncio.Event()
    steps = []

    async def slow():
        steps.append("before")
        await gate.wait()
        steps.append("after")
        return 42

    rest = eager.start(slow())
    assert rest is not None and steps == ["before"]
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0.01)
    assert steps == ["before"] and not task.done()
    gate.set()
    assert await task == 42
    assert steps == ["before", "after"]


async def test_cancelling_the_task_cancels_the_waiting_coroutine():
    """A cancelled finisher throws CancelledError into the coroutine, which can clean up."""
    cleaned = []

    async def slow():
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    task = asyncio.ensure_future(eager.start(slow()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_an_error_before_the_first_wait_reaches_the_caller():
    """start() raises what the coroutine raised before it ever waited."""

    async def broken():
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        eager.start(broken())


async def test_an_awaitable_that_is_not_a_coroutine_is_taken_too():
    """A future (as some ASGI servers' send returns) is awaited to its result."""
    future = asyncio.get_running_loop().create_future()
    rest = eager.start(future)
    assert rest is not None
    future.set_result("sent")
    assert await asyncio.ensure_future(rest) == "sent"
