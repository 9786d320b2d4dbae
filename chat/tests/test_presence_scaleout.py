"""Presence and typing across two real server processes on one Redis and one PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from multichat_client import ChatClient, MultichatError, Presence, RestClient, Typing
from testkit.live import LiveServer, join, next_frame, open_ws

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REFRESH = 0.5  # CHAT_PRESENCE_REFRESH_SECONDS of both processes
# A killed process's users are offline for the others within 4 x refresh (entries live
# 3 x refresh, re-read every refresh) plus the one-second coalescing of frames.
BOUND = 4 * REFRESH + 1.0


@pytest.fixture
def cluster(pg_url, redis_server):
    """Two server processes sharing one PostgreSQL database and one Redis."""
    env = {
        "CHANNEL_LAYER_PREFIX": f"mcpresence-{uuid.uuid4().hex[:8]}",
        "CHAT_PRESENCE_REFRESH_SECONDS": str(REFRESH),
    }
    servers = [
        LiveServer(database_url=pg_url, redis_url=redis_server.url, extra_env=env) for _ in range(2)
    ]
    servers[0].prepare()
    made = servers[0].seed(
        users=["alice", "bob", "carol"],
        staff=["stella"],
        rooms=["General"],
        staff_rooms=["Staff"],
        tokens=["bob", "carol"],
    )
    for server in servers:
        server.made = made
        server.start()
    yield servers
    for server in servers:
        server.stop()


async def next_event(events, kind: type, timeout: float = 5):
    """The client's next event of ``kind``."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__} event")


async def until_state(
    ws, room: int, username: str, state: str, timeout: float = 10, seen: list | None = None
) -> None:
    """Read frames (into ``seen``) until one of ``room`` says ``username`` is ``state``."""

    def says(frame: dict) -> bool:
        if seen is not None:
            seen.append(frame)
        wanted = {"username": username, "state": state}
        return frame.get("presence") == room and wanted in frame["members"]

    await next_frame(ws, says, timeout=timeout)


async def test_two_processes_share_presence_typing_and_drop_a_killed_process(cluster):
    """alice on A, bob on B: each sees the other; typing and idle cross; kill -9 A: offline."""
    a_server, b_server = cluster
    room = a_server.made.rooms["General"]
    alice = await open_ws(a_server, "alice")
    bob = await open_ws(b_server, "bob")
    await join(alice, room)
    await join(bob, room)
    await until_state(bob, room, "alice", "online")
    await until_state(alice, room, "bob", "online")

    async with ChatClient(b_server.url, a_server.made.tokens["carol"], awareness=True) as carol:
        await carol.join(room)
        events = aiter(carol)
        full = await next_event(events, Presence)
        assert full.full and {m.username for m in full.members} >= {"alice", "bob", "carol"}

        await alice.send(json.dumps({"command": "typing", "room": room}))
        typing = await next_frame(bob, lambda f: "typing" in f)
        assert typing == {"typing": room, "username": "alice", "expires_in": 6}
        seen = await next_event(events, Typing)
        assert (seen.room, seen.username, seen.expires_in) == (room, "alice", 6)

        await alice.send(json.dumps({"command": "presence", "state": "idle"}))
        await until_state(bob, room, "alice", "idle")

    rest = RestClient(b_server.url, a_server.made.tokens["bob"])
    members = await asyncio.to_thread(rest.members, room)
    assert members["members"] == [
        {"username": "alice", "state": "idle"},
        {"username": "bob", "state": "online"},
    ]

    await asyncio.to_thread(a_server.kill)
    killed = time.monotonic()
    await until_state(bob, room, "alice", "offline", timeout=BOUND + 5)
    assert time.monotonic() - killed < BOUND + 1.0  # a second of slack for a busy machine
    members = await asyncio.to_thread(rest.members, room)
    assert members["members"] == [{"username": "bob", "state": "online"}]
    await bob.close()


async def test_a_staff_only_room_keeps_its_members_from_others_across_processes(cluster):
    """stella in the staff room on A; bob on B sees nothing of it, over the socket or REST."""
    a_server, b_server = cluster
    general, staff_room = a_server.made.rooms["General"], a_server.made.rooms["Staff"]
    bob = await open_ws(b_server, "bob")
    await join(bob, general)
    assert (await join(bob, staff_room))["error"] == "ROOM_ACCESS_DENIED"
    stella = await open_ws(a_server, "stella")
    await join(stella, staff_room)
    await join(stella, general)
    await stella.send(json.dumps({"command": "typing", "room": staff_room}))
    await stella.send(json.dumps({"command": "typing", "room": general}))
    seen: list[dict] = []
    await next_frame(bob, lambda f: seen.append(f) or f.get("typing") == general)
    await until_state(bob, general, "stella", "online", seen=seen)
    rest = RestClient(b_server.url, a_server.made.tokens["bob"])
    with pytest.raises(MultichatError) as refused:
        await asyncio.to_thread(rest.members, staff_room)
    assert refused.value.code == "ROOM_ACCESS_DENIED"
    await stella.close()
    await until_state(bob, general, "stella", "offline", seen=seen)
    await bob.close()
    about = [f for f in seen if staff_room in (f.get("presence"), f.get("typing"), f.get("room"))]
    assert about == []
