"""Start a coroutine at once, in the caller, and make a task only if it has to wait.

The fan-out hub hands each room event to hundreds of sockets in a row; a
task per socket per event (Task, context copy, registration in asyncio's
weak set of all tasks) cost more than the send itself. Sending on an idle,
writable socket never waits, so ``start`` runs the send to its end right
away; only a socket whose transport is paused (a slow reader) gets a
coroutine to finish later. Python 3.12's eager tasks do the same for tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


def start(coro: Awaitable[Any]) -> Resumed | None:
    """Run ``coro`` until it ends or first waits; None if it ended, else what finishes it.

    Exceptions raised before the first wait propagate to the caller. The
    returned awaitable must be awaited (in a task) to finish the coroutine.
    Any awaitable is taken (an ASGI server's ``send`` may return a future).
    """
    if not isinstance(coro, Coroutine):
        coro = _awaiting(coro)
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return Resumed(coro, waiting_on)


async def _awaiting(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class Resumed:
    """A coroutine that was started by ``start`` and is waiting on ``waiting_on``."""

    __slots__ = ("coro", "waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self.coro = coro
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, Any]:
        """Pass what the coroutine waits on to the awaiting task, and resume it, to its end."""
        waiting_on = self.waiting_on
        while True:
            try:
                yield waiting_on  # the task waits for it exactly as if the coroutine were its own
            except BaseException as exc:  # cancellation included: the coroutine sees it
                try:
                    waiting_on = self.coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting_on = self.coro.send(None)
                except StopIteration as stop:
                    return stop.value
