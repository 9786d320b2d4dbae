"""A command caught by a connection that comes up and drops before the command's task runs.

The reconnect loop sets the "connected" event and, if the connection drops at
once, clears it again; a task woken by the set may run only after the clear. It
must wait for the next connection, not fail with "not connected": nothing was sent.
This happened in a full run (test_shutdown, clients posting across a SIGTERM); here the
interleaving is made on purpose, on the client alone.
"""

import asyncio
import json

import pytest

from multichat_client import ChatClient


class Recorder:
    """A connection that keeps what is sent on it."""

    close_code = None

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


async def turns(condition, most: int = 100) -> None:
    """Let other tasks run until ``condition()`` holds (at most ``most`` turns)."""
    for _ in range(most):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["command", "notify"])
async def test_a_frame_waits_for_the_next_connection_when_one_drops_before_it_runs(kind):
    client = ChatClient("http://127.0.0.1:9/", "token")
    client._runner = asyncio.get_running_loop().create_future()  # a runner still running
    frame = {"command": "send", "room": 1, "message": "hello"}
    if kind == "command":
        task = asyncio.create_task(client._command(frame))
    else:
        task = asyncio.create_task(client._notify({"command": "typing", "room": 1}))
    await turns(lambda: len(client._connected._waiters) > 0)  # it waits for a connection
    client._ws = Recorder()
    client._connected.set()  # up...
    client._connected.clear()  # ...and down before the waiting task ran
    client._ws = None
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done(), task.exception()  # before the fix: ConnectionLost "not connected"
    second = client._ws = Recorder()
    client._connected.set()
    await turns(lambda: second.sent)
    if kind == "command":
        await client._handle({"ref": second.sent[0]["ref"], "seq": 5, "room": 1})
        assert (await task)["seq"] == 5
    else:
        await task
        assert second.sent == [{"command": "typing", "room": 1}]
    client._runner.cancel()
