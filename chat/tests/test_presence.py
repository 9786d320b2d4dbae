"""Presence (who is in each room, online or idle) and typing, through the real ASGI app."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from api import services as token_services
from chat import roster, services
from testkit import factories
from testkit.sockets import Socket


@pytest.fixture(autouse=True)
def quick_presence(settings):
    """Frames at most every 0.2 s (not 1 s), so the tests wait less."""
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0.2


async def presence_frame(sock: Socket, room_id: int, timeout: float = 5) -> dict:
    """The next presence frame of ``room_id``."""
    return await sock.recv_until(lambda f: f.get("presence") == room_id, timeout)


async def until_state(sock: Socket, room_id: int, username: str, state: str) -> None:
    """Read presence frames until one says ``username`` is ``state`` in the room."""
    async with asyncio.timeout(5):
        while True:
            frame = await presence_frame(sock, room_id)
            if {"username": username, "state": state} in frame["members"]:
                return


async def eventually(check, read, timeout: float = 5) -> None:
    """Poll ``await read()`` until ``check`` holds on its ``members`` (REST is not pushed)."""
    async with asyncio.timeout(timeout):
        for delay in itertools.repeat(0.05):
            if check((await read())["members"]):
                return
            await asyncio.sleep(delay)


async def test_a_join_lists_who_is_there_and_others_see_the_entry_and_the_exit(
    connect, alice, bob, room
):
    """The joiner gets the full list; members get changes: online, then offline."""
    a = await connect(alice)
    await a.join(room.pk)
    full = await presence_frame(a, room.pk)
    assert full == {
        "presence": room.pk,
        "members": [{"username": "alice", "state": "online"}],
        "full": True,
    }
    b = await connect(bob)
    await b.join(room.pk)
    assert (await presence_frame(b, room.pk))["members"] == [
        {"username": "alice", "state": "online"},
        {"username": "bob", "state": "online"},
    ]
    change = await presence_frame(a, room.pk)
    assert change == {
        "presence": room.pk,
        "members": [{"username": "bob", "state": "online"}],
        "full": False,
    }
    await b.send({"command": "leave", "room": room.pk})
    await until_state(a, room.pk, "bob", "offline")


async def test_a_person_stays_while_any_of_their_sockets_is_in_the_room(connect, alice, bob, room):
    """bob in two tabs: closing one says nothing; closing the last says offline."""
    a = await connect(alice)
    await a.join(room.pk)
    tab1, tab2 = await connect(bob), await connect(bob)
    await tab1.join(room.pk)
    await tab2.join(room.pk)
    await until_state(a, room.pk, "bob", "online")
    await tab1.close()
    assert [f for f in await a.until_quiet() if "presence" in f] == []
    await tab2.close()
    await until_state(a, room.pk, "bob", "offline")


async def test_idle_when_every_socket_is_idle_and_online_again_when_one_is_active(
    connect, alice, bob, room
):
    """presence idle/active: the person is idle only while all their sockets say idle."""
    a = await connect(alice)
    await a.join(room.pk)
    phone, laptop = await connect(bob), await connect(bob)
    await phone.join(room.pk)
    await laptop.join(room.pk)
    await phone.send({"command": "presence", "state": "idle"})
    await laptop.send({"command": "presence", "state": "idle"})
    await until_state(a, room.pk, "bob", "idle")
    await laptop.send({"command": "presence", "state": "active"})
    await until_state(a, room.pk, "bob", "online")
    # A socket that said idle before joining joins idle.
    await laptop.send({"command": "presence", "state": "idle"})
    await until_state(a, room.pk, "bob", "idle")
    late = await connect(alice)
    await late.send({"command": "presence", "state": "idle"})
    await late.join(room.pk)
    members = (await presence_frame(late, room.pk))["members"]
    assert {"username": "bob", "state": "idle"} in members
    assert {"username": "alice", "state": "online"} in members  # her first socket is active


async def test_presence_command_rejects_other_states(connect, alice):
    """Only active and idle are states a client may claim."""
    sock = await connect(alice)
    await sock.send({"command": "presence", "state": "offline", "ref": 1})
    assert (await sock.recv())["error"] == "BAD_REQUEST"


async def test_typing_reaches_the_others_but_not_the_typist(connect, alice, bob, room):
    """typing: no reply; bob sees it with expires_in; alice's other tab does not."""
    a, a2, b = await connect(alice), await connect(alice), await connect(bob)
    for sock in (a, a2, b):
        await sock.join(room.pk)
    await a.send({"command": "typing", "room": room.pk})
    typing = await b.recv_until(lambda f: "typing" in f)
    assert typing == {"typing": room.pk, "username": "alice", "expires_in": 6}
    for sock in (a, a2):
        assert [f for f in await sock.until_quiet() if "typing" in f or "error" in f] == []


async def test_typing_needs_a_joined_room_and_is_rate_limited(settings, connect, alice, room):
    """typing in a room not joined is refused; past the burst it is RATE_LIMITED."""
    settings.CHAT_TYPING_RATE = 0.01
    settings.CHAT_TYPING_BURST = 2
    sock = await connect(alice)
    await sock.send({"command": "typing", "room": room.pk, "ref": "x"})
    assert (await sock.recv())["error"] == "ROOM_ACCESS_DENIED"
    await sock.join(room.pk)
    for _ in range(2):
        await sock.send({"command": "typing", "room": room.pk})
    await sock.send({"command": "typing", "room": room.pk, "ref": "late"})
    refused = await sock.recv()
    assert (refused["error"], refused["ref"]) == ("RATE_LIMITED", "late")
    assert refused["retry_after"] > 0


async def test_a_staff_only_room_shows_its_members_to_nobody_else(
    connect, alice, staff, room, staff_room
):
    """alice never sees the staff room's presence or typing, over the socket or REST."""
    a = await connect(alice)
    await a.join(room.pk)
    assert (await a.join(staff_room.pk))["error"] == "ROOM_ACCESS_DENIED"
    s = await connect(staff)
    await s.join(staff_room.pk)
    await s.send({"command": "typing", "room": staff_room.pk})
    await s.send({"command": "presence", "state": "idle"})
    frames = await a.until_quiet()
    rooms = {f.get("presence", f.get("typing", f.get("room"))) for f in frames}
    assert staff_room.pk not in rooms
    assert all(m["username"] != "stella" for f in frames for m in f.get("members", []))
    _, token = await database_sync_to_async(token_services.token_create)(user=alice, name="t")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    response = await database_sync_to_async(client.get)(f"/api/rooms/{staff_room.pk}/members")
    assert response.status_code == 403
    assert response.json()["error"] == "ROOM_ACCESS_DENIED"
    assert "stella" not in response.content.decode()


async def test_losing_access_takes_the_person_out_of_presence(connect, alice, staff, room):
    """A room made staff-only expels alice: staff see her go offline."""
    b = await connect(staff)
    await b.join(room.pk)
    a = await connect(alice)
    await a.join(room.pk)
    await until_state(b, room.pk, "alice", "online")
    room.staff_only = True
    await database_sync_to_async(services.room_save)(room=room)
    await until_state(b, room.pk, "alice", "offline")


async def test_rest_members_lists_who_is_in_the_room(connect, alice, bob, room):
    """GET /api/rooms/{id}/members: the people with a socket in the room, and their state."""
    _, token = await database_sync_to_async(token_services.token_create)(user=bob, name="t")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    url = f"/api/rooms/{room.pk}/members"

    async def members() -> dict:
        return (await database_sync_to_async(client.get)(url)).json()

    assert await members() == {"room": room.pk, "members": []}
    a = await connect(alice)
    await a.join(room.pk)
    await a.send({"command": "presence", "state": "idle"})
    await eventually(lambda m: m == [{"username": "alice", "state": "idle"}], members)
    await a.close()
    await eventually(lambda m: m == [], members)


async def test_a_room_joined_by_many_at_once_gets_coalesced_frames(settings, connect, alice, room):
    """60 people join at once: a member gets a handful of frames, not one per joiner."""
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 1.0
    settings.CHAT_JOIN_RATE = 0
    users = await database_sync_to_async(
        lambda: [factories.create_user(f"user{i}") for i in range(60)]
    )()
    watcher = await connect(alice)
    await watcher.join(room.pk)
    await presence_frame(watcher, room.pk)  # the full list: alice alone
    sockets = await asyncio.gather(*(connect(user) for user in users))
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(sock.join(room.pk) for sock in sockets))
    online: set[str] = set()
    frames = 0
    async with asyncio.timeout(15):
        while len(online) < 60:
            frame = await presence_frame(watcher, room.pk)
            frames += 1
            online |= {m["username"] for m in frame["members"] if m["state"] == "online"}
    elapsed = asyncio.get_running_loop().time() - started
    # At most one frame per room per second (plus the first, sent at once).
    assert frames <= elapsed / settings.CHAT_PRESENCE_COALESCE_SECONDS + 2, (frames, elapsed)
    assert frames < 10


def test_store_merges_processes_and_drops_expired_entries(settings, redis_layer):
    """Redis store: online beats idle across processes; a process's stale entry expires."""
    store = roster.store()
    assert isinstance(store, roster.RedisStore)
    store.write("p1", [(7, 1, "alice", roster.IDLE)])
    store.write("p2", [(7, 1, "alice", roster.ONLINE), (7, 2, "bob", roster.IDLE)])
    assert [(m.username, m.state) for m in roster.room_members(7)] == [
        ("alice", "online"),
        ("bob", "idle"),
    ]
    store.write("p2", [(7, 2, "bob", roster.OFFLINE)])
    assert set(store.read([7])[7]) == {1}
    settings.CHAT_PRESENCE_REFRESH_SECONDS = 0.2
    store.write("p3", [(7, 3, "carol", roster.ONLINE)])  # lives 3 x 0.2 s unless rewritten
    assert 3 in store.read([7])[7]
    deadline = time.monotonic() + 5
    while 3 in store.read([7])[7]:  # wall-clock expiry is what is tested: wait for it
        assert time.monotonic() < deadline
    assert set(store.read([7])[7]) == {1}  # read also deleted the expired field


_local_states = st.dictionaries(
    st.integers(0, 30), st.lists(st.booleans(), min_size=1, max_size=3), max_size=15
)
_remote_states = st.dictionaries(
    st.integers(0, 30),
    st.dictionaries(st.sampled_from(["p1", "p2"]), st.sampled_from(["online", "idle"])),
    max_size=15,
)


@given(local=_local_states, remote=_remote_states)
def test_a_joins_full_list_is_everyone_over_every_process_once_by_username(local, remote):
    """Roster._listing (the fast path for users only here) = each user's merged state, sorted."""
    view = roster.Roster.__new__(roster.Roster)
    view.process = "here"
    view.local = {
        7: {
            user: roster._Local(f"user{user:02}", {object(): active for active in sockets})
            for user, sockets in local.items()
        }
    }
    view.remote = {
        7: {
            user: {process: (state, f"user{user:02}") for process, state in by_process.items()}
            for user, by_process in remote.items()
            if by_process
        }
    }
    expected = []
    for user in sorted(set(local) | set(view.remote[7])):
        entries = dict(view.remote[7].get(user, {}))
        if user in local:
            entries["here"] = ("online" if any(local[user]) else "idle", f"user{user:02}")
        expected.append(roster._member(*roster.merged(entries)))
    assert view._listing(7) == expected
