"""A socket that stops reading, against a real server: it holds nobody up and loses nothing."""

import asyncio
import json
import os

import pytest

from testkit.live import LiveServer, is_message, join, open_ws

COUNT = 1500
TEXT = "x" * 3900  # 1,500 of these are ~5.9 MB: more than the kernel buffers on both sides hold


@pytest.fixture(scope="module")
def server(database_url):
    """A real server without a send rate limit or enter/leave notices."""
    env = {"CHAT_SEND_RATE": "0", "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0"}
    live = LiveServer(
        database_url=database_url, redis_url=os.environ.get("REDIS_URL"), extra_env=env
    ).prepare()
    live.room_id = live.seed(users=["slow", "quick", "sender"], rooms=["Busy"]).rooms["Busy"]
    live.start()
    yield live
    live.stop()


async def connect(server, user: str, **options):
    """A logged-in socket that has joined the room."""
    ws = await open_ws(server, user, **options)
    await join(ws, server.room_id)
    return ws


async def read_seqs(ws, count: int, timeout: float) -> list[int]:
    """The seqs of the next ``count`` messages on ``ws``."""
    seqs: list[int] = []
    async with asyncio.timeout(timeout):
        while len(seqs) < count:
            frame = json.loads(await ws.recv())
            if is_message(frame):
                seqs.append(frame["seq"])
    return seqs


async def test_a_socket_that_stops_reading_delays_nobody_and_later_gets_everything(server):
    """While one member reads nothing, the others get every message; then it gets them all too."""
    # max_queue=1: the client stops reading from TCP as soon as one frame waits unread,
    # so the server's buffers for this socket fill up and its transport pauses.
    slow = await connect(server, "slow", max_queue=1)
    quick = await connect(server, "quick")
    sender = await connect(server, "sender")
    try:
        echoes = asyncio.ensure_future(read_seqs(sender, COUNT, timeout=90))
        for _ in range(COUNT):
            await sender.send(json.dumps({"command": "send", "room": server.room_id,
                                          "message": TEXT}))  # fmt: skip
        assert await read_seqs(quick, COUNT, timeout=90) == list(range(1, COUNT + 1))
        assert await echoes == list(range(1, COUNT + 1))
        assert await read_seqs(slow, COUNT, timeout=90) == list(range(1, COUNT + 1))
    finally:
        for ws in (slow, quick, sender):
            await ws.close()
