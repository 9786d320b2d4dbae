"""Two server processes that both live through a Redis outage deliver live again by themselves."""

import asyncio
import json
import uuid

import pytest

from chat import redisconn
from testkit.live import LiveServer, is_message, join, next_frame, open_ws, wait_for_health
from testkit.servers import free_port, start_redis

pytestmark = pytest.mark.redis


async def post(ws, room: int, text: str) -> dict:
    """Post ``text`` and return the poster's answer (the ack or the error)."""
    await ws.send(json.dumps({"command": "send", "room": room, "message": text, "ref": text}))
    return await next_frame(ws, lambda f: "error" in f or "sent" in f, timeout=10)


async def messages_upto(ws, seq: int, timeout: float) -> dict[int, str]:
    """Every message ``ws`` gets until the one numbered ``seq``, by seq (a repeat fails).

    A poster's own copy may come before its ack (then ``post`` skipped it),
    so callers check the seq they wait for, not the whole set.
    """
    seen: dict[int, str] = {}
    async with asyncio.timeout(timeout):
        while seq not in seen:
            frame = await next_frame(ws, is_message, timeout=timeout)
            assert frame["seq"] not in seen, f"seq {frame['seq']} arrived twice"
            seen[frame["seq"]] = frame["message"]
    return seen


async def test_both_processes_deliver_live_after_redis_comes_back(shared_database):
    """Redis stops and restarts under two live processes: the missed post and the next arrive."""
    port = free_port()
    redis = start_redis(port)
    env = {"CHANNEL_LAYER_PREFIX": f"mcrecovery-{uuid.uuid4().hex[:8]}", "CHAT_SEND_RATE": "0"}
    servers = [LiveServer(redis_url=redis.url, extra_env=env, **shared_database) for _ in range(2)]
    servers[0].prepare()  # one database for both (static files are shared by every server)
    room = servers[0].seed(users=["alice", "bob", "carol"], rooms=["General"]).rooms["General"]
    sockets = []
    try:
        for server in servers:
            server.start(timeout=40)
        a_server, b_server = servers
        alice = await open_ws(a_server, "alice")
        carol = await open_ws(a_server, "carol")
        bob = await open_ws(b_server, "bob")
        sockets = [alice, carol, bob]
        for ws in sockets:
            await join(ws, room)
        assert "sent" in await post(alice, room, "before")
        for ws in (carol, bob):
            assert (await next_frame(ws, is_message, timeout=10))["seq"] == 1

        redis.stop()
        await wait_for_health(a_server, 503, timeout=20)
        during = await post(alice, room, "during")
        assert during.get("error") == "SERVICE_UNAVAILABLE", during
        stored = during.get("stored_seq")
        assert stored == 2 or "nothing was stored" in during["detail"], during

        redis = start_redis(port)
        for server in servers:
            await wait_for_health(server, 200, timeout=20)
        if stored is not None:
            # (a) Nobody posts again: the stored message still reaches both processes' members.
            for ws in (alice, carol, bob):
                assert (await messages_upto(ws, 2, timeout=20))[2] == "during"
        # (b) The first post after recovery, on either process, is delivered live on both.
        expected = 3 if stored is not None else 2
        first = await post(bob, room, "after")
        assert "sent" in first, first
        assert first["seq"] == expected
        for ws in (alice, carol):
            assert (await messages_upto(ws, expected, timeout=10))[expected] == "after"
        second = await post(alice, room, "after-a")
        assert "sent" in second, second
        for ws in (carol, bob):
            assert (await messages_upto(ws, expected + 1, timeout=10))[expected + 1] == "after-a"
        for server in servers:
            assert server.process.poll() is None, "a process did not live through the outage"
    finally:
        for ws in sockets:
            await ws.close()
        for server in servers:
            server.stop()
        redis.stop()


def test_our_redis_client_reconnects_after_a_redis_restart(settings):
    """A client whose connection Redis dropped makes a new one: the next command succeeds."""
    port = free_port()
    redis = start_redis(port)
    settings.REDIS_URL = redis.url
    client = redisconn.sync_client()
    try:
        assert client.ping()
        redis.stop()
        redis = start_redis(port)
        assert client.ping()
    finally:
        client.close()
        redis.stop()
