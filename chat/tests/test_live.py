"""End to end against real uvicorn processes, over real sockets."""

import asyncio
import json
import os

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from testkit.live import LiveServer, is_message, next_frame, open_ws


@pytest.fixture(scope="module")
def server(database_url):
    """One real server with two users and a room, shared by this module's tests."""
    live = LiveServer(database_url=database_url, redis_url=os.environ.get("REDIS_URL")).prepare()
    live.room_id = live.seed(users=["alice", "bob"], rooms=["General"]).rooms["General"]
    live.start()
    yield live
    live.stop()


async def test_two_real_clients_chat_through_a_real_server(server):
    """Log in through the form, open real sockets, and exchange messages."""
    async with await open_ws(server, "alice") as alice, await open_ws(server, "bob") as bob:
        for ws in (alice, bob):
            await ws.send(json.dumps({"command": "join", "room": server.room_id}))
            assert (await next_frame(ws, lambda f: "join" in f))["title"] == "General"
        await alice.send(json.dumps({"command": "send", "room": server.room_id, "message": "hi"}))
        frame = await next_frame(bob, is_message)
        assert (frame["username"], frame["message"]) == ("alice", "hi")


async def test_real_anonymous_socket_is_closed_with_4401(server):
    """Without a session the real server sends USER_HAS_TO_LOGIN and closes with 4401."""
    async with await open_ws(server, None) as ws:
        assert json.loads(await ws.recv())["error"] == "USER_HAS_TO_LOGIN"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4401


async def test_real_handshake_with_a_forged_origin_gets_403(server):
    """The real server refuses a cross-site handshake with 403 before any frame."""
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(server, "alice", origin="https://evil.example")
    assert refused.value.response.status_code == 403


async def test_real_oversized_frame_closes_with_1009(server):
    """A frame over the server's limit closes the socket with 1009."""
    async with await open_ws(server, "alice") as ws:
        await ws.send("x" * 100_000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1009


async def test_a_server_restart_mid_conversation_loses_and_repeats_nothing(server):
    """Messages posted while a client is cut off by a restart come back exactly once via since."""
    live = server
    room = live.create_room("Restarts")
    try:
        alice = await open_ws(live, "alice")
        await alice.send(json.dumps({"command": "join", "room": room}))
        await next_frame(alice, lambda f: "join" in f)
        for i in range(3):
            await alice.send(json.dumps({"command": "send", "room": room, "message": f"a{i}"}))
        last_seen = 0
        for _ in range(3):
            last_seen = (await next_frame(alice, is_message))["seq"]
        assert last_seen == 3

        await asyncio.to_thread(live.stop)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(alice.recv(), 5)
        await asyncio.to_thread(live.start)

        async with await open_ws(live, "bob") as bob:
            await bob.send(json.dumps({"command": "join", "room": room}))
            await next_frame(bob, lambda f: "join" in f)
            for i in range(5):
                await bob.send(json.dumps({"command": "send", "room": room, "message": f"b{i}"}))
            for _ in range(5):
                await next_frame(bob, is_message)

        async with await open_ws(live, "alice") as alice:
            await alice.send(json.dumps({"command": "join", "room": room, "since": last_seen}))
            reply = await next_frame(alice, lambda f: "join" in f)
            assert (reply["last_seq"], reply["replayed"]) == (8, 5)
            got = [await next_frame(alice, is_message) for _ in range(5)]
            assert [(f["seq"], f["message"]) for f in got] == [(4 + i, f"b{i}") for i in range(5)]
    finally:
        if live.process is None or live.process.poll() is not None:
            await asyncio.to_thread(live.start)


async def test_real_text_frame_with_invalid_utf8_closes_with_1007(server):
    """A text frame whose bytes are not UTF-8 closes the socket with 1007; nothing is stored."""
    async with await open_ws(server, "alice") as ws:
        await ws.send(json.dumps({"command": "join", "room": server.room_id, "ref": 1}))
        before = (await next_frame(ws, lambda f: "join" in f))["last_seq"]
        frame = b'{"command": "send", "room": %d, "message": "\xff\xfe"}' % server.room_id
        await ws.send(frame, text=True)  # bytes as a text frame: websockets does not check them
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert closed.value.rcvd.code == 1007
    async with await open_ws(server, "alice") as ws:
        await ws.send(json.dumps({"command": "join", "room": server.room_id, "ref": 2}))
        assert (await next_frame(ws, lambda f: "join" in f))["last_seq"] == before
