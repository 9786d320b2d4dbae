"""Several real server processes on one Redis and one PostgreSQL, and Redis going away."""

import asyncio
import json
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from testkit.live import (
    LiveServer,
    health,
    is_message,
    join,
    next_frame,
    open_ws,
    wait_for_health,
)
from testkit.servers import start_redis, start_sentinel

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def cluster(pg_url, redis_server):
    """Two server processes sharing one PostgreSQL database and one Redis."""
    prefix = f"mccluster-{uuid.uuid4().hex[:8]}"
    env = {"CHANNEL_LAYER_PREFIX": prefix, "CHAT_SEND_RATE": "0"}
    servers = [
        LiveServer(database_url=pg_url, redis_url=redis_server.url, extra_env=env) for _ in range(2)
    ]
    servers[0].prepare()  # one database for both (static files are shared by every server)
    room = servers[0].seed(users=["alice", "bob", "carol"], rooms=["General"]).rooms["General"]
    for server in servers:
        server.room_id = room
        server.start()
    yield servers
    for server in servers:
        server.stop()


async def test_clients_on_two_processes_see_one_contiguous_ordered_stream(cluster):
    """Concurrent senders on two processes: both clients get seq 1..N, in order, once each."""
    a_server, b_server = cluster
    room = a_server.room_id
    alice = await open_ws(a_server, "alice")
    bob = await open_ws(b_server, "bob")
    await join(alice, room)
    await join(bob, room)

    async def send_many(ws, name):
        for i in range(20):
            await ws.send(json.dumps({"command": "send", "room": room, "message": f"{name}{i}"}))

    await asyncio.gather(send_many(alice, "a"), send_many(bob, "b"))
    seen = {}
    for name, ws in (("alice", alice), ("bob", bob)):
        seen[name] = [(await next_frame(ws, is_message))["seq"] for _ in range(40)]
    assert seen["alice"] == list(range(1, 41))
    assert seen["bob"] == list(range(1, 41))
    await alice.close()
    await bob.close()


async def test_a_killed_process_loses_nothing_and_its_clients_resume_on_the_other(cluster):
    """Kill one process mid-traffic: every acknowledged message survives; resume on the other."""
    a_server, b_server = cluster
    room = a_server.room_id
    alice = await open_ws(a_server, "alice")
    bob = await open_ws(b_server, "bob")
    await join(alice, room)
    await join(bob, room)
    acked: set[int] = set()
    stop = asyncio.Event()

    async def bob_sends():
        i = 0
        while not stop.is_set():
            await bob.send(
                json.dumps({"command": "send", "room": room, "message": f"b{i}", "ref": i})
            )
            i += 1
            await asyncio.sleep(0.01)

    async def bob_collects_acks():
        while True:
            frame = json.loads(await bob.recv())
            if "sent" in frame:
                acked.add(frame["seq"])

    sender = asyncio.create_task(bob_sends())
    collector = asyncio.create_task(bob_collects_acks())
    seen = []
    while len(seen) < 20:
        seen.append((await next_frame(alice, is_message))["seq"])
    await asyncio.to_thread(a_server.kill)
    with pytest.raises(ConnectionClosed):
        while True:
            frame = json.loads(await asyncio.wait_for(alice.recv(), 5))
            if is_message(frame):
                seen.append(frame["seq"])
    await asyncio.sleep(0.3)  # bob keeps posting while alice is cut off
    alice = await open_ws(b_server, "alice")
    reply = await join(alice, room, since=seen[-1])
    for _ in range(reply["replayed"]):
        seen.append((await next_frame(alice, is_message))["seq"])
    stop.set()
    await sender
    await asyncio.sleep(0.5)
    collector.cancel()
    while True:
        try:
            frame = json.loads(await asyncio.wait_for(alice.recv(), 1))
        except TimeoutError:
            break
        if is_message(frame):
            seen.append(frame["seq"])
    assert seen == list(range(1, len(seen) + 1)), "gap or duplicate across the failover"
    assert acked <= set(seen), "a message acknowledged as stored was lost"
    await alice.close()
    await bob.close()


async def test_redis_going_away_and_coming_back(pg_url):
    """Redis down: server up, /healthz 503, posts refused at once; Redis back: all recovers."""
    redis = start_redis()
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    live = LiveServer(database_url=pg_url, redis_url=redis.url).prepare()
    made = live.seed(users=["alice", "bob"], rooms=["General", "Other"])
    room, other = made.rooms["General"], made.rooms["Other"]
    live.start()
    try:
        alice = await open_ws(live, "alice")
        bob = await open_ws(live, "bob")
        await join(alice, room)
        await join(alice, other)
        await join(bob, room)
        await alice.send(json.dumps({"command": "send", "room": room, "message": "before"}))
        assert (await next_frame(bob, is_message))["seq"] == 1
        # The post's activity event went out too (sockets' posts send it batched, a moment
        # later): one failing after Redis stops would tell the server first, not the post.
        await next_frame(bob, lambda f: room in [a["room"] for a in f.get("activity", [])])

        redis.stop()
        await wait_for_health(live, 503)
        outcomes = []
        for i in range(2):
            await alice.send(
                json.dumps({"command": "send", "room": room, "message": f"during{i}", "ref": i})
            )
            frame = await next_frame(alice, lambda f: "error" in f or "sent" in f, timeout=5)
            outcomes.append(frame)
        assert [f.get("error") for f in outcomes] == ["SERVICE_UNAVAILABLE"] * 2, outcomes
        # The first post was stored before the failed publish showed the outage;
        # the second was refused before storing.
        assert outcomes[0]["stored_seq"] == 2
        assert "stored_seq" not in outcomes[1]

        redis = start_redis(port)
        await wait_for_health(live, 200)
        await asyncio.sleep(1.5)  # the layer's subscriber reconnects on its own
        # A publish anywhere (here: another room) re-syncs the rooms that missed events.
        await alice.send(json.dumps({"command": "send", "room": other, "message": "elsewhere"}))
        missed = await next_frame(bob, is_message, timeout=10)
        assert (missed["seq"], missed["message"]) == (2, "during0")
        await alice.send(json.dumps({"command": "send", "room": room, "message": "after"}))
        after = await next_frame(bob, is_message, timeout=10)
        assert (after["seq"], after["message"]) == (3, "after")
        await alice.close()
        await bob.close()
    finally:
        live.stop()
        redis.stop()


async def test_redis_through_sentinel(tmp_path):
    """With REDIS_SENTINELS instead of REDIS_URL, the server finds the master and chats."""
    master = start_redis()
    sentinel = start_sentinel(master)
    env = {"REDIS_SENTINELS": sentinel.url, "REDIS_SENTINEL_MASTER": "mymaster"}
    live = LiveServer(data_dir=str(tmp_path), extra_env=env).prepare()
    assert "REDIS_URL" not in live.env
    room = live.seed(users=["alice", "bob"], rooms=["General"]).rooms["General"]
    live.start()
    try:
        assert await asyncio.to_thread(health, live) == 200
        alice = await open_ws(live, "alice")
        bob = await open_ws(live, "bob")
        await join(alice, room)
        await join(bob, room)
        await alice.send(json.dumps({"command": "send", "room": room, "message": "via sentinel"}))
        assert (await next_frame(bob, is_message))["message"] == "via sentinel"
        await alice.close()
        await bob.close()
        master.stop()
        await wait_for_health(live, 503)
    finally:
        live.stop()
        sentinel.stop()
        master.stop()
