"""Bad bytes over a real socket to a real uvicorn process: the documented close codes."""

import asyncio
import json
import os

import pytest
from websockets.exceptions import ConnectionClosed

from chat.tests.liveserver import LiveServer, next_frame, open_ws


@pytest.fixture(scope="module")
def server(database_url):
    """One real server with a user, shared by this module's tests."""
    live = LiveServer(database_url=database_url, redis_url=os.environ.get("REDIS_URL")).prepare()
    live.create_user("alice", "alice-pw-1234")
    live.room_id = live.create_room("General")
    live.start()
    yield live
    live.stop()


async def test_real_text_frame_with_invalid_utf8_closes_with_1007(server):
    """A text frame whose bytes are not UTF-8 closes the socket with 1007; nothing is stored."""
    async with await open_ws(server, "alice") as ws:
        await ws.send(json.dumps({"command": "join", "room": server.room_id, "ref": 1}))
        assert (await next_frame(ws, lambda f: "join" in f))["join"] == server.room_id
        frame = b'{"command": "send", "room": %d, "message": "\xff\xfe"}' % server.room_id
        await ws.send(frame, text=True)  # bytes as a text frame: websockets does not check them
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert closed.value.rcvd.code == 1007
    async with await open_ws(server, "alice") as ws:
        await ws.send(json.dumps({"command": "history", "room": server.room_id, "ref": 2}))
        assert (await next_frame(ws, lambda f: "history" in f))["messages"] == []
