"""The Python client's answer to close 4408 (this socket fell behind): resume at once, with since.

The real server closes with 4408 only under a slow reader's backlog, which a
test cannot produce on demand; a minimal socket server that speaks the join
reply and then closes with 4408 stands in for it, so only the client is
under test here. (Close 1013 is tested against a real server in
test_db_outage.py.)
"""

import asyncio
import json
import time

import pytest
from websockets.asyncio.server import serve

from multichat_client import ChatClient, Message

ROOM = 7


def join_reply(frame: dict, last_seq: int) -> str:
    """The server's reply to a join frame."""
    reply = {"join": frame["room"], "title": "General", "last_seq": last_seq, "staff_only": False}
    return json.dumps({**reply, "replayed": 0, "truncated": False, "ref": frame["ref"]})


@pytest.mark.asyncio
async def test_client_reconnects_at_once_after_4408_and_rejoins_with_since():
    """After 4408 the client reconnects without a backoff pause and re-joins with since."""
    joins: list[tuple[float, dict]] = []
    closed_at: list[float] = []

    async def handler(ws):
        async for text in ws:
            frame = json.loads(text)
            if frame.get("command") != "join":
                continue
            joins.append((time.monotonic(), frame))
            await ws.send(join_reply(frame, last_seq=4))
            if len(joins) == 1:
                message = {"msg_type": 0, "room": ROOM, "seq": 5, "username": "bob"}
                await ws.send(json.dumps({**message, "message": "hi", "ts": "2026-01-01T00:00Z"}))
                await asyncio.sleep(0.2)
                closed_at.append(time.monotonic())
                await ws.close(4408, "this socket fell behind")
                return

    statuses: list[str] = []
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        # A long minimum backoff: a pause before reconnecting would show.
        client = ChatClient(
            f"http://127.0.0.1:{port}", "t0ken", min_delay=10.0, on_status=statuses.append
        )
        try:
            await client.start()
            await client.join(ROOM)
            event = await asyncio.wait_for(anext(aiter(client)), 10)
            assert isinstance(event, Message) and event.seq == 5
            deadline = time.monotonic() + 10
            while len(joins) < 2:
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.05)
        finally:
            await client.close()
    assert joins[1][1]["since"] == 5  # the normal resume path: nothing missed, nothing twice
    assert joins[1][0] - closed_at[0] < 3.0, statuses  # at once, not after the 5-10 s backoff
    assert "fell behind; reconnecting now" in statuses
