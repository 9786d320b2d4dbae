"""The Python client's answer to close codes: 4408 resumes at once, 1012 spreads and resends.

The real server closes with 4408 only under a slow reader's backlog, which a
test cannot produce on demand; a minimal socket server that speaks the join
reply and then closes with 4408 stands in for it, so only the client is
under test here. For 1012 the same kind of server times the reconnect and
sees the unanswered post come again. (Close 1013 is tested against a real
server in test_db_outage.py, 1012 in test_shutdown.py.)
"""

import asyncio
import json
import random
import time
from collections import Counter

import pytest
from websockets.asyncio.server import serve

from multichat_client import ChatClient, Message
from multichat_client.client import backoff_delay, restart_window

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


def test_restart_window_is_the_one_the_close_reason_names_else_5_s():
    """The server's 1012 reason names the spread; the config.websocket reason is understood."""
    from config.websocket import restart_reason
    from config.websocket import restart_window as server_window

    assert restart_window(restart_reason(server_window(5000))) == 20.0  # 5,000 / 250 a second
    assert restart_window(restart_reason(server_window(3))) == 5.0  # the minimum
    assert restart_window(restart_reason(server_window(10**6))) == 60.0  # the maximum
    assert restart_window("") == restart_window(None) == 5.0


def test_backoff_is_full_jitter_uniform_over_the_whole_window():
    """Seeded draws cover [0, window] evenly (equal jitter never goes below half the window)."""
    rng = random.Random(1012)
    for attempt, window in ((1, 0.5), (3, 2.0), (10, 30.0)):
        draws = [
            backoff_delay(attempt, min_delay=0.5, max_delay=30.0, rng=rng) for _ in range(10_000)
        ]
        assert all(0 <= d <= window for d in draws)
        deciles = Counter(min(9, int(10 * d / window)) for d in draws)
        assert all(900 <= deciles[k] <= 1100 for k in range(10)), deciles  # ~1000 each
        assert abs(sum(draws) / len(draws) - window / 2) < 0.02 * window


@pytest.mark.asyncio
async def test_client_after_1012_waits_a_random_part_of_the_window_and_resends_unanswered_post():
    """Close 1012 naming 2 s, a post unanswered: reconnect after the seeded draw, send it again."""
    seed, window = 7, 2.0
    expected = random.Random(seed).uniform(0, window)  # the client's first draw
    posts: list[tuple[float, dict]] = []
    closed_at: list[float] = []
    joins = 0

    async def handler(ws):
        nonlocal joins
        async for text in ws:
            frame = json.loads(text)
            if frame.get("command") == "join":
                joins += 1
                await ws.send(join_reply(frame, last_seq=0))
            elif frame.get("command") == "send":
                posts.append((time.monotonic(), frame))
                if len(posts) == 1:  # restarting: this one is never read, say 1012
                    closed_at.append(time.monotonic())
                    await ws.close(1012, "server restarting: reconnect within 2 s")
                    return
                await ws.send(json.dumps({"sent": ROOM, "seq": 1, "ref": frame["ref"]}))

    statuses: list[str] = []
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = ChatClient(
            f"http://127.0.0.1:{port}",
            "t0ken",
            min_delay=10.0,  # the ordinary backoff would show as a long pause
            rng=random.Random(seed),
            on_status=statuses.append,
        )
        try:
            await client.start()
            await client.join(ROOM)
            seq = await asyncio.wait_for(client.send(ROOM, "hello"), 20)
        finally:
            await client.close()
    assert seq == 1 and client.resent == 1
    assert [frame["message"] for _, frame in posts] == ["hello", "hello"]
    waited = posts[1][0] - closed_at[0]
    assert expected <= waited < expected + 3.0, (expected, waited, statuses)
    assert f"server restarting; reconnecting in {expected:.1f} s" in statuses
