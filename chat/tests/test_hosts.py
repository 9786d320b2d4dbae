"""Several machines, for real: two server hosts in network namespaces, links cut as networks fail.

Hosts A and B are network namespaces (testkit/netns.py), each running a real
server process bound to the address of its own client link. The root
namespace is the third machine: PostgreSQL, Redis and the clients. Each host
reaches Redis and PostgreSQL over a link of its own (through a TcpProxy
listening on the root end of that link, since both listen on 127.0.0.1 only),
so one host can lose one service while everything else works. A cut drops
packets: no RST, no error, silence, as when a switch or a cable fails.

Every test checks what users see: each client follows its room's seqs one
by one (a gap, a repeat or a reversal fails at once), every post that was
acknowledged (``sent``, or SERVICE_UNAVAILABLE with ``stored_seq``) is
stored and reaches everyone, and a post answered "nothing was stored" is not
stored. Wall-clock bounds are loose outage bounds for a loaded machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from testkit import netns
from testkit.live import LiveServer, healthz
from testkit.proxy import TcpProxy
from testkit.servers import PostgresDatabase, ensure_redis, postgres_base_url

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(postgres_base_url() is None, reason="needs DATABASE_URL on PostgreSQL"),
]

NOTICE_BOUND = 15.0  # a host's /healthz turns 503 (the hub's probe gives up after 5 s)
SEND_BOUND = 12.0  # any post is answered within this, whatever is cut
HEAL_BOUND = 40.0  # a restored link: TCP retransmission backs off, then everything resumes
# A post on a host cut from Redis: the rate limiter's Redis call times out (and lets the
# post through), then the post is refused, nothing stored, since the hub's probe marked the
# shard failing (events.mark_failing). 15.9 s measured here (2026-11-29; 21.5 s, stored but
# not announced, before the mark); the bound is loose for a loaded machine.
REDIS_CUT_SEND_BOUND = 25.0
HEARTBEAT_TIMEOUT = 3.0  # the test clients' heartbeat (the browser's default is 20 s)


@dataclass
class Machine:
    """A host: its namespace and links, its server, and the proxies to Redis and PostgreSQL."""

    host: netns.Host
    server: LiveServer
    proxies: list[TcpProxy]

    @property
    def name(self) -> str:
        """The host's name: "a" or "b"."""
        return self.host.name


@dataclass
class Cluster:
    """Two hosts sharing one database and one Redis; rooms and tokens made once."""

    a: Machine
    b: Machine
    database: PostgresDatabase
    rooms: dict[str, int]
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Hosts A and B, each in a network namespace with links for clients, Redis and PostgreSQL."""
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    with contextlib.ExitStack() as undo:  # whatever fails, everything made so far is removed
        network = netns.Network()
        undo.callback(network.close)  # last: deleting a namespace deletes its links
        database = PostgresDatabase.create(postgres_base_url() or "")
        undo.callback(database.drop)
        redis = ensure_redis()
        undo.callback(redis.stop)  # only if this run started it
        target = urlsplit(database.url)
        env = {"CHANNEL_LAYER_PREFIX": f"mchosts-{uuid.uuid4().hex[:8]}"}
        machines: list[Machine] = []
        for name in ("a", "b"):
            host = network.host(name, {"clients": "host", "redis": "root", "database": "root"})
            proxies = [
                TcpProxy("127.0.0.1", redis.port, host=host.links["redis"].root_ip),
                TcpProxy(target.hostname or "127.0.0.1", target.port or 5432,
                         host=host.links["database"].root_ip),
            ]  # fmt: skip
            for proxy in proxies:
                undo.callback(proxy.start().stop)
            to_redis, to_database = proxies
            through = target._replace(
                netloc=f"{target.username}@{to_database.host}:{to_database.port}"
            )
            server = LiveServer(
                database_url=urlunsplit(through),
                redis_url=f"redis://{to_redis.host}:{to_redis.port}/0",
                host=host.links["clients"].host_ip,
                prefix=host.exec_prefix,
                extra_env={**env, "ALLOWED_HOSTS": f"{host.links['clients'].host_ip},127.0.0.1"},
            )
            undo.callback(server.stop)  # first: servers stop before their links go
            machines.append(Machine(host, server, proxies))
        a, b = machines
        a.server.prepare()
        made = a.server.seed(
            users=["alice", "bob"],  # few: each password costs a hash
            rooms=["redis", "database", "clients"],
            tokens=["alice", "bob"],
        )
        # Side by side: each start waits for its server's /healthz.
        with ThreadPoolExecutor(2) as starting:
            for started in [starting.submit(m.server.start, 40) for m in machines]:
                started.result()
        yield Cluster(a, b, database, made.rooms, made.tokens)


@pytest.fixture
def hosts(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, every link restored and both hosts healthy again after each test."""
    yield cluster
    for machine in (cluster.a, cluster.b):
        machine.host.restore_all()
        for proxy in machine.proxies:
            proxy.restore()
    deadline = time.monotonic() + HEAL_BOUND
    for machine in (cluster.a, cluster.b):
        while healthz(machine.server.url)[0] != 200:
            assert time.monotonic() < deadline, f"host {machine.name} did not heal"
            time.sleep(0.2)


async def wait_for_healthz(server: LiveServer, status: int, timeout: float) -> dict[str, Any]:
    """Wait until the server's /healthz answers ``status``; return its body."""
    async with asyncio.timeout(timeout):
        while True:
            got, body = await asyncio.to_thread(healthz, server.url, 3)
            if got == status:
                return body
            await asyncio.sleep(0.2)


def stored(database: PostgresDatabase, room: int) -> dict[int, str]:
    """The room's stored posts by seq, read directly (not through any host's link)."""
    with psycopg.connect(database.url) as conn:
        rows = conn.execute("SELECT seq, text FROM chat_message WHERE room_id = %s", (room,))
        return dict(rows.fetchall())


@dataclass
class Follower:
    """A client of one room that checks each post it gets: the next seq, exactly once, in order.

    It heartbeats as docs/protocol.md says a client does (ping; no frame in
    time means the connection is dead) and resumes on any host with ``since``.
    """

    name: str
    token: str
    room: int
    last: int = 0  # the highest seq received; the next one must be last + 1
    texts: dict[int, str] = field(default_factory=dict)
    ws: ClientConnection | None = None
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    _refs: int = 0

    async def connect(self, base: str) -> None:
        """Open a socket to the server at ``base`` (http://host:port/) and join the room with
        ``since`` = the last seq received."""
        self.ws = await connect(
            base.replace("http://", "ws://", 1) + "chat/stream/",
            additional_headers={"Authorization": f"Bearer {self.token}"},
            ping_interval=None,  # the heartbeat below is the client's own, as in the browser
            open_timeout=SEND_BOUND,
        )
        reply = await self.command({"command": "join", "room": self.room, "since": self.last})
        assert "join" in reply, reply

    async def fail_over(self, bases: list[str]) -> str:
        """Resume on the first of ``bases`` whose /healthz answers 200, as a balancer would."""
        for base in bases:
            if (await asyncio.to_thread(healthz, base, HEARTBEAT_TIMEOUT))[0] == 200:
                await self.connect(base)
                return base
        raise AssertionError(f"{self.name}: no healthy server among {bases}")

    async def command(self, frame: dict[str, Any], timeout: float = SEND_BOUND) -> dict[str, Any]:
        """Send a command with a fresh ref; read (and check) frames until its reply."""
        assert self.ws is not None
        self._refs += 1
        ref = f"{self.name}-{self._refs}"
        await self.ws.send(json.dumps({**frame, "ref": ref}))
        async with asyncio.timeout(timeout):
            while ref not in self.replies:
                await self.read_one()
        return self.replies.pop(ref)

    async def post(self, text: str) -> dict[str, Any]:
        """Post ``text``; its reply (``sent``, or the error)."""
        return await self.command({"command": "send", "room": self.room, "message": text})

    async def read_one(self) -> None:
        """Take the next frame: a post must be the next seq; a reply is kept by its ref."""
        assert self.ws is not None
        frame = json.loads(await self.ws.recv())
        if frame.get("msg_type") == 0 and "seq" in frame and frame.get("room") == self.room:
            seq = frame["seq"]
            assert seq == self.last + 1, f"{self.name} got seq {seq} after {self.last}"
            self.last = seq
            self.texts[seq] = frame["message"]
        elif "ref" in frame:
            self.replies[str(frame["ref"])] = frame

    async def upto(self, seq: int, timeout: float) -> None:
        """Read until every post up to ``seq`` arrived."""
        async with asyncio.timeout(timeout):
            while self.last < seq:
                await self.read_one()

    async def alive(self, timeout: float = HEARTBEAT_TIMEOUT) -> bool:
        """The heartbeat: ping; True if any frame comes back within ``timeout``."""
        assert self.ws is not None
        try:
            await self.ws.send(json.dumps({"command": "ping"}))
            async with asyncio.timeout(timeout):
                await self.read_one()
        except (TimeoutError, ConnectionClosed):
            return False
        return True

    async def drop(self) -> None:
        """Give up on the socket at once, as a client does whose heartbeat went unanswered."""
        if self.ws is not None:
            self.ws.transport.abort()
            self.ws = None

    async def close(self) -> None:
        """Close the socket, if open."""
        if self.ws is not None:
            await self.ws.close()
            self.ws = None


def acknowledged(reply: dict[str, Any]) -> int | None:
    """The seq a post's reply says it was stored as, or None if nothing was stored."""
    if "sent" in reply:
        return int(reply["seq"])
    assert reply.get("error") == "SERVICE_UNAVAILABLE", reply
    if "stored_seq" in reply:
        return int(reply["stored_seq"])
    assert "nothing was stored" in reply["detail"], reply
    return None


async def test_host_cut_from_redis_tells_its_clients_and_heals_without_loss(hosts):
    """A loses Redis, not its clients: posts on A and B are stored; A's clients are told (A's
    /healthz is 503 naming the layer); when the link returns they get every post once, in order."""
    a, b, room = hosts.a, hosts.b, hosts.rooms["redis"]
    alice = Follower("alice", hosts.tokens["alice"], room)
    carol = Follower("carol", hosts.tokens["alice"], room)
    dave = Follower("dave", hosts.tokens["alice"], room)  # leaves during the cut, resumes after
    bob = Follower("bob", hosts.tokens["bob"], room)
    everyone = [alice, carol, dave, bob]
    acked: dict[int, str] = {}
    try:
        for follower in (alice, carol, dave):
            await follower.connect(a.server.url)
        await bob.connect(b.server.url)
        first = acknowledged(await alice.post("before"))
        assert first is not None
        acked[first] = "before"
        for follower in everyone:
            await follower.upto(first, SEND_BOUND)

        # A long cut: packets dropped, and the flows through it forgotten (as by a
        # stateful firewall or Redis' side timing out), so what B publishes meanwhile
        # never reaches A, not even late: A must catch up from the database.
        a.host.links["redis"].cut()
        to_redis = a.proxies[0]
        to_redis.cut("blackhole")
        started = time.monotonic()
        body = await wait_for_healthz(a.server, 503, NOTICE_BOUND)
        assert body["channel_layer"].startswith("failed") and body["database"] == "ok", body
        assert time.monotonic() - started < NOTICE_BOUND
        assert healthz(b.server.url)[0] == 200  # only A is cut: the balancer keeps B
        await dave.close()

        for text in ("b-during-1", "b-during-2"):
            reply = await bob.post(text)
            assert "sent" in reply, reply  # B is untouched
            acked[reply["seq"]] = text
        started = time.monotonic()
        # A's client is told: live delivery is down (with the seq if the post was stored).
        reply = await alice.command(
            {"command": "send", "room": room, "message": "a-during"}, REDIS_CUT_SEND_BOUND
        )
        assert time.monotonic() - started < REDIS_CUT_SEND_BOUND
        seq = acknowledged(reply)
        assert "sent" not in reply, reply
        if seq is not None:
            acked[seq] = "a-during"
        reply = await bob.post("b-during-3")
        assert "sent" in reply, reply
        acked[reply["seq"]] = "b-during-3"
        await bob.upto(max(acked), SEND_BOUND)

        a.host.links["redis"].restore()
        to_redis.restore()  # A's old connections are reset when they next send
        await wait_for_healthz(a.server, 200, HEAL_BOUND)  # A heals by itself
        for follower in (alice, carol):
            await follower.upto(max(acked), HEAL_BOUND)
        await dave.connect(a.server.url)  # resumes with since on A
        await dave.upto(max(acked), SEND_BOUND)
        reply = await alice.post("after")
        assert "sent" in reply, reply
        acked[reply["seq"]] = "after"
        for follower in everyone:
            await follower.upto(max(acked), SEND_BOUND)
            assert {s: follower.texts[s] for s in acked} == acked, follower.name

        in_database = await asyncio.to_thread(stored, hosts.database, room)
        assert {s: in_database[s] for s in acked} == acked
        if seq is None:
            assert "a-during" not in in_database.values()
    finally:
        for follower in everyone:
            await follower.close()


async def test_host_cut_from_the_database_stores_nothing_there_while_b_keeps_working(hosts):
    """A loses PostgreSQL: its posts are SERVICE_UNAVAILABLE "nothing was stored" (and nothing
    is), its /healthz is 503 naming the database; B stores and A still delivers; A heals."""
    a, b, room = hosts.a, hosts.b, hosts.rooms["database"]
    alice = Follower("alice", hosts.tokens["alice"], room)
    carol = Follower("carol", hosts.tokens["alice"], room)
    bob = Follower("bob", hosts.tokens["bob"], room)
    everyone = [alice, carol, bob]
    acked: dict[int, str] = {}
    try:
        for follower in (alice, carol):
            await follower.connect(a.server.url)
        await bob.connect(b.server.url)
        reply = await alice.post("before")
        assert "sent" in reply, reply
        acked[reply["seq"]] = "before"
        for follower in everyone:
            await follower.upto(max(acked), SEND_BOUND)

        a.host.links["database"].cut()
        body = await wait_for_healthz(a.server, 503, NOTICE_BOUND)
        assert body["database"].startswith("failed") and body["channel_layer"] == "ok", body
        assert healthz(b.server.url)[0] == 200
        started = time.monotonic()
        reply = await alice.post("lost on A")
        assert time.monotonic() - started < SEND_BOUND
        assert reply.get("error") == "SERVICE_UNAVAILABLE", reply
        assert "nothing was stored" in reply["detail"] and "stored_seq" not in reply, reply
        reply = await bob.post("from B")  # B stores; A's sockets get it live (no gap to fill)
        assert "sent" in reply, reply
        acked[reply["seq"]] = "from B"
        for follower in everyone:
            await follower.upto(max(acked), SEND_BOUND)

        a.host.links["database"].restore()
        await wait_for_healthz(a.server, 200, HEAL_BOUND)
        started = time.monotonic()
        reply = await alice.post("after")
        assert "sent" in reply, reply
        assert time.monotonic() - started < SEND_BOUND
        acked[reply["seq"]] = "after"
        for follower in everyone:
            await follower.upto(max(acked), SEND_BOUND)
            assert {s: follower.texts[s] for s in acked} == acked, follower.name
        in_database = await asyncio.to_thread(stored, hosts.database, room)
        assert in_database == acked  # and "lost on A" took no seq
    finally:
        for follower in everyone:
            await follower.close()


async def test_clients_of_a_link_that_drops_or_refuses_resume_elsewhere_without_loss(hosts):
    """A's client link drops packets: a heartbeat notices, the client resumes on B with since;
    an open connection through it lives through a short cut; a link that refuses is noticed at
    once. Every post arrives exactly once, in order, wherever the client ends up."""
    a, b, room = hosts.a, hosts.b, hosts.rooms["clients"]
    link = a.host.links["clients"]
    # A balancer's port in the root namespace, in front of A: "refuse" resets its connections.
    front = TcpProxy(link.host_ip, a.server.port).start()
    front_url = f"http://127.0.0.1:{front.port}/"
    alice = Follower("alice", hosts.tokens["alice"], room)  # on A; fails over when it drops
    dave = Follower("dave", hosts.tokens["alice"], room)  # on A through the balancer
    bob = Follower("bob", hosts.tokens["bob"], room)  # on B, posting
    everyone = [alice, dave, bob]
    acked: dict[int, str] = {}

    async def post(text: str) -> None:
        reply = await bob.post(text)
        assert "sent" in reply, reply
        acked[reply["seq"]] = text

    try:
        await alice.connect(a.server.url)
        await dave.connect(front_url)
        await bob.connect(b.server.url)
        await post("before")
        for follower in everyone:
            await follower.upto(max(acked), SEND_BOUND)

        link.cut()  # packets dropped: no close, no error, just silence
        await post("during the drop")
        started = time.monotonic()
        assert not await alice.alive(), "a heartbeat was answered across a cut link"
        await alice.drop()
        assert await alice.fail_over([a.server.url, b.server.url]) == b.server.url
        await alice.upto(max(acked), SEND_BOUND)
        assert time.monotonic() - started < HEARTBEAT_TIMEOUT + 3 * SEND_BOUND

        link.restore()
        await wait_for_healthz(a.server, 200, HEAL_BOUND)
        await post("after the drop")
        # dave's connection was never closed: TCP delivers what waited, in order.
        await dave.upto(max(acked), HEAL_BOUND)
        await alice.close()
        await alice.connect(a.server.url)  # and back to A, with since
        await alice.upto(max(acked), SEND_BOUND)

        front.cut("refuse")  # resets: noticed at once, no heartbeat needed
        await post("during the refusal")
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            await dave.upto(max(acked), SEND_BOUND)
        assert time.monotonic() - started < HEARTBEAT_TIMEOUT
        dave.ws = None
        assert await dave.fail_over([front_url, b.server.url]) == b.server.url
        await post("after the refusal")
        for follower in everyone:
            await follower.upto(max(acked), SEND_BOUND)
            assert {s: follower.texts[s] for s in acked} == acked, follower.name
        assert await asyncio.to_thread(stored, hosts.database, room) == acked
    finally:
        for follower in everyone:
            await follower.close()
        front.stop()
