"""Per-person enter/leave notices across two real server processes on one Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from websockets.asyncio.client import ClientConnection, connect

from testkit.live import LiveServer, join, next_frame, password_for

# Two servers to migrate, seed and start per test: on a loaded 2-core machine past 120 s.
pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(300)]

REFRESH = 0.5  # CHAT_PRESENCE_REFRESH_SECONDS of both processes


@pytest.fixture
def make_cluster(pg_url, redis_server):
    """make_cluster(grace): two server processes sharing one PostgreSQL database and one Redis."""
    started: list[LiveServer] = []

    def make(grace: float) -> list[LiveServer]:
        env = {
            "CHANNEL_LAYER_PREFIX": f"mcnotices-{uuid.uuid4().hex[:8]}",
            "CHAT_PRESENCE_REFRESH_SECONDS": str(REFRESH),
            "CHAT_PRESENCE_GRACE_SECONDS": str(grace),
            "CHAT_JOIN_RATE": "0",
        }
        servers = [
            LiveServer(database_url=pg_url, redis_url=redis_server.url, extra_env=env)
            for _ in range(2)
        ]
        servers[0].prepare()
        made = servers[0].seed(users=["alice", "bob", "carol", "dave"], rooms=["General"])
        for server in servers:
            server.made = made
            server.start()
            started.append(server)
        return servers

    yield make
    for server in started:
        server.stop()


class Person:
    """One user's login, from which to open sockets on any process (as reconnects do)."""

    def __init__(self, server: LiveServer, name: str) -> None:
        self.name = name
        self.cookie = server.login_cookie(name, password_for(name))

    async def open(self, server: LiveServer, room: int) -> ClientConnection:
        """A socket to ``server`` that has joined ``room``."""
        ws = await connect(
            server.ws_url,
            additional_headers={"Origin": server.url.rstrip("/"), "Cookie": self.cookie},
        )
        assert "join" in await join(ws, room)
        return ws


def notices(frames: list[dict], username: str) -> list[int]:
    """The msg_types of ``username``'s enter/leave notices among ``frames``."""
    return [
        f["msg_type"] for f in frames if f.get("msg_type") in (4, 5) and f["username"] == username
    ]


async def read_until_notice(
    ws: ClientConnection, username: str, msg_type: int, seen: list[dict], timeout: float
) -> None:
    """Read frames into ``seen`` until ``username``'s notice of ``msg_type``."""

    def found(frame: dict) -> bool:
        seen.append(frame)
        return frame.get("msg_type") == msg_type and frame.get("username") == username

    await next_frame(ws, found, timeout=timeout)


async def drain(ws: ClientConnection, seen: list[dict], quiet: float = 1.0) -> None:
    """Read frames into ``seen`` until none comes for ``quiet`` seconds."""
    while True:
        try:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), quiet)))
        except TimeoutError:
            return


async def people(server: LiveServer, *names: str) -> list[Person]:
    """Log each one in (in a thread: the login is a blocking HTTP exchange)."""
    return [await asyncio.to_thread(Person, server, name) for name in names]


async def test_moving_between_processes_announces_nothing(make_cluster):
    """bob joins on A, then on B, then leaves A: nothing; leaving B too: one leave."""
    grace = 1.5
    a_server, b_server = make_cluster(grace)
    room = a_server.made.rooms["General"]
    carol, bob, dave = await people(a_server, "carol", "bob", "dave")
    watcher = await carol.open(b_server, room)
    witness = await dave.open(b_server, room)
    seen: list[dict] = []
    on_a = await bob.open(a_server, room)
    await read_until_notice(watcher, "bob", 4, seen, timeout=10)
    on_b = await bob.open(b_server, room)
    await on_a.close()
    await witness.close()  # its leave is due after bob's would be
    await read_until_notice(watcher, "dave", 5, seen, timeout=grace + 10)
    await drain(watcher, seen)
    assert notices(seen, "bob") == [4]
    await on_b.close()
    await read_until_notice(watcher, "bob", 5, seen, timeout=grace + 10)
    await drain(watcher, seen)
    assert notices(seen, "bob") == [4, 5]
    await watcher.close()


async def test_a_killed_process_users_leave_once_after_the_grace_and_expiry(make_cluster):
    """kill -9 A with bob on it: B's members see bob leave once, within 4 refreshes + grace."""
    grace = 1.5
    a_server, b_server = make_cluster(grace)
    room = a_server.made.rooms["General"]
    carol, bob = await people(a_server, "carol", "bob")
    watcher = await carol.open(b_server, room)
    seen: list[dict] = []
    await bob.open(a_server, room)
    await read_until_notice(watcher, "bob", 4, seen, timeout=10)
    await asyncio.to_thread(a_server.kill)
    killed = time.monotonic()
    bound = 4 * REFRESH + grace + 1.0  # roster expiry and re-read, the grace, a busy machine
    await read_until_notice(watcher, "bob", 5, seen, timeout=bound + 10)
    elapsed = time.monotonic() - killed
    assert grace <= elapsed < bound + 1.0, elapsed
    await drain(watcher, seen, quiet=grace + 1.0)  # a second watcher's settle would come now
    assert notices(seen, "bob") == [4, 5]
    await watcher.close()


async def test_a_restart_announces_nothing(make_cluster):
    """A restarts: bob reconnects to B, alice to A when it is back; B's members see nothing."""
    grace = 20.0  # covers a restart on a busy machine (8 s seen at a load of 10 on 2 cores)
    a_server, b_server = make_cluster(grace)
    room = a_server.made.rooms["General"]
    carol, alice, bob, dave = await people(a_server, "carol", "alice", "bob", "dave")
    watcher = await carol.open(b_server, room)
    seen: list[dict] = []
    await alice.open(a_server, room)
    await bob.open(a_server, room)
    for name in ("alice", "bob"):
        await read_until_notice(watcher, name, 4, seen, timeout=10)
    witness = await dave.open(b_server, room)
    await asyncio.to_thread(a_server.stop)  # a deploy: every socket of A drops
    restarted = time.monotonic()
    bob_again = await bob.open(b_server, room)
    await asyncio.to_thread(a_server.start)
    alice_again = await alice.open(a_server, room)
    assert time.monotonic() - restarted < grace, "the restart took longer than the grace"
    await witness.close()
    await read_until_notice(watcher, "dave", 5, seen, timeout=grace + 10)
    await drain(watcher, seen, quiet=2.0)  # B's watchdog settles a second after the grace
    told = [(f["username"], f["msg_type"]) for f in seen if f.get("msg_type") in (4, 5)]
    assert notices(seen, "alice") == [4], told
    assert notices(seen, "bob") == [4], told
    for ws in (bob_again, alice_again, watcher):
        await ws.close()
