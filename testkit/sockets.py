"""An in-process WebSocket through the real ASGI app (channels' communicator, unpatched)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator

Frame = dict[str, Any]


class Communicator(WebsocketCommunicator):  # type: ignore[misc]  # channels is untyped
    """channels' WebsocketCommunicator, with the app's database clean-up left on, as in production.

    channels' communicator swaps ``channels.db.close_old_connections`` for a
    no-op while it sends or waits for a frame (made for Django tests that run
    sync code on the test's own thread and connection). The app then runs its
    ``database_sync_to_async`` calls without handing the worker thread's
    connection back to the pool: one stays checked out of it past the test, and
    the test database cannot be dropped. Overlapping patches from concurrent
    sockets can even restore the no-op for the rest of the run. This one sends
    and receives as asgiref's communicator does, with no patch.
    """

    async def send_input(self, message: dict[str, Any]) -> None:
        """Give the app one ASGI message."""
        await ApplicationCommunicator.send_input(self, message)  # type: ignore[no-untyped-call]

    async def receive_output(self, timeout: float = 1) -> Any:
        """The app's next ASGI message, within ``timeout`` seconds."""
        return await ApplicationCommunicator.receive_output(self, timeout)  # type: ignore[no-untyped-call]


def ephemeral(frame: Frame) -> bool:
    """True for a frame no command asked for and nothing stores: a notice, presence, typing,
    the activity feed, the live room list."""
    return (
        frame.get("msg_type") in (4, 5)
        or "presence" in frame
        or "typing" in frame
        or "activity" in frame
        or not ROOM_LIST_KEYS.isdisjoint(frame)
    )


# The live room list's frames (chat.rooms): rooms created, changed, removed, left, rejoined.
ROOM_LIST_KEYS = frozenset({"room_listed", "room_removed", "room_left", "room_rejoined"})


class Socket:
    """A Communicator through the real ASGI app, with JSON helpers."""

    def __init__(self, communicator: Communicator) -> None:
        self.comm = communicator

    async def send(self, frame: Frame) -> None:
        """Send one JSON frame."""
        await self.comm.send_json_to(frame)

    async def raw(self, timeout: float = 3) -> Frame:
        """The next JSON frame from the server, whatever it is."""
        frame: Frame = await self.comm.receive_json_from(timeout=timeout)
        return frame

    async def recv(self, timeout: float = 3) -> Frame:
        """The next frame that is not ephemeral (a notice, presence, typing, activity)."""
        return await self.recv_until(lambda f: not ephemeral(f), timeout)

    async def recv_until(self, predicate: Callable[[Frame], bool], timeout: float = 3) -> Frame:
        """Skip frames until one matches ``predicate``; return it."""
        while True:
            frame = await self.raw(timeout)
            if predicate(frame):
                return frame

    async def silent(self, timeout: float = 0.2) -> bool:
        """True if the server sends nothing but ephemeral frames within ``timeout``."""
        while not await self.comm.receive_nothing(timeout=timeout):
            if not ephemeral(await self.raw()):
                return False
        return True

    async def until_quiet(self, quiet: float = 0.5) -> list[Frame]:
        """Every frame that arrives until the socket stays quiet for ``quiet`` seconds."""
        seen = []
        while not await self.comm.receive_nothing(timeout=quiet):
            seen.append(await self.raw())
        return seen

    async def join(self, room_id: object, **fields: object) -> Frame:
        """Join a room and return the join reply (replayed frames are left to read)."""
        await self.send({"command": "join", "room": room_id, **fields})
        return await self.recv()

    async def close(self) -> None:
        """Disconnect."""
        await self.comm.disconnect()
