"""Enter/leave notices per person, with a grace period, through the real ASGI app."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from chat import presence, roster
from testkit.sockets import Socket

GRACE = 1.0


@pytest.fixture(autouse=True)
def short_grace(settings):
    """A one-second grace (not 30 s) and no join budget in the way."""
    settings.CHAT_PRESENCE_GRACE_SECONDS = GRACE
    settings.CHAT_JOIN_RATE = 0


@pytest.fixture
def carol(make_user):
    return make_user("carol")


def notice_of(username: str, msg_type: int | None = None):
    """A predicate for ``username``'s enter/leave notices (of one type, if given)."""
    kinds = (4, 5) if msg_type is None else (msg_type,)
    return lambda f: f.get("msg_type") in kinds and f.get("username") == username


async def witness_leaves(watcher: Socket, witness: Socket, seen: list[dict]) -> None:
    """Close ``witness`` and read (into ``seen``) until its leave notice, then until quiet.

    Its leave is due a grace after it closed, so a pending leave of anyone
    who left before it was due first: this waits on that, not on a clock.
    """
    name = witness.name
    await witness.close()
    await watcher.recv_until(lambda f: seen.append(f) or notice_of(name, 5)(f), 10)
    seen.extend(await watcher.until_quiet())


async def opened(connect, user) -> Socket:
    """A socket of ``user``, named for the witness helper."""
    sock = await connect(user)
    sock.name = user.username
    return sock


async def test_enter_at_once_and_leave_after_the_grace(connect, alice, bob, room):
    """bob joins: one enter at once; bob goes: one leave, no sooner than the grace."""
    a = await connect(alice)
    await a.join(room.pk)
    b = await connect(bob)
    await b.join(room.pk)
    enter = await a.recv_until(notice_of("bob"))
    assert (enter["msg_type"], enter["message"], enter["room"]) == (4, "joined the room", room.pk)
    assert "seq" not in enter
    await b.close()
    closed = time.monotonic()
    leave = await a.recv_until(notice_of("bob"), timeout=10)
    assert (leave["msg_type"], leave["message"]) == (5, "left the room")
    assert time.monotonic() - closed >= GRACE * 0.9  # the loop's timer may run a little early
    assert [f for f in await a.until_quiet() if notice_of("bob")(f)] == []


async def test_a_reconnect_within_the_grace_announces_nothing(connect, alice, bob, carol, room):
    """bob's socket drops and a new one joins at once: the room is told nothing."""
    a = await connect(alice)
    await a.join(room.pk)
    witness = await opened(connect, carol)
    await witness.join(room.pk)
    b = await connect(bob)
    await b.join(room.pk)
    await a.recv_until(notice_of("bob", 4))
    await b.close()
    again = await connect(bob)
    await again.join(room.pk)
    seen: list[dict] = []
    await witness_leaves(a, witness, seen)
    assert [f for f in seen if notice_of("bob")(f)] == []
    await again.close()
    assert (await a.recv_until(notice_of("bob"), timeout=10))["msg_type"] == 5


async def test_two_tabs_one_closes_announces_nothing_the_last_one_leave(
    connect, alice, bob, carol, room
):
    """bob's second tab joins and closes silently; his last tab's close is one leave."""
    a = await connect(alice)
    await a.join(room.pk)
    witness = await opened(connect, carol)
    await witness.join(room.pk)
    tab1 = await connect(bob)
    await tab1.join(room.pk)
    await a.recv_until(notice_of("bob", 4))
    tab2 = await connect(bob)
    await tab2.join(room.pk)
    await tab2.send({"command": "leave", "room": room.pk})  # closing the room in one tab
    seen: list[dict] = []
    await witness_leaves(a, witness, seen)
    assert [f for f in seen if notice_of("bob")(f)] == []
    await tab1.close()
    assert (await a.recv_until(notice_of("bob"), timeout=10))["msg_type"] == 5
    assert [f for f in await a.until_quiet() if notice_of("bob")(f)] == []


async def test_coming_back_after_the_grace_is_a_new_entry(connect, alice, bob, room):
    """Notices alternate: enter, (a quick leave and return: nothing), leave, enter."""
    a = await connect(alice)
    await a.join(room.pk)
    b = await connect(bob)
    for _ in range(3):  # in and out quickly: the room sees one entry
        await b.join(room.pk)
        await b.send({"command": "leave", "room": room.pk})
        assert "leave" in await b.recv()
    seen = [(await a.recv_until(notice_of("bob"), timeout=10))["msg_type"] for _ in range(2)]
    assert seen == [4, 5]
    await b.join(room.pk)
    assert (await a.recv_until(notice_of("bob"), timeout=10))["msg_type"] == 4


async def test_expulsion_counts_as_leaving(connect, alice, staff, room):
    """A room made staff-only takes alice out: staff see her leave after the grace."""
    from channels.db import database_sync_to_async

    from chat import services

    s = await connect(staff)
    await s.join(room.pk)
    a = await connect(alice)
    await a.join(room.pk)
    await s.recv_until(notice_of("alice", 4))
    room.staff_only = True
    await database_sync_to_async(services.room_save)(room=room)
    assert (await s.recv_until(notice_of("alice"), timeout=10))["msg_type"] == 5


# --- the shared state, as two processes on one Redis see it -----------------------


@pytest.fixture
def two_processes(settings, redis_server):
    """Two RedisNotices and roster stores on one Redis under a fresh prefix, as two processes."""
    settings.CHAT_PRESENCE_GRACE_SECONDS = 0.3
    prefix = f"mctest-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_server.url)
    made = [
        (presence.RedisNotices(redis.Redis.from_url(redis_server.url), prefix),
         roster.RedisStore(redis.Redis.from_url(redis_server.url), prefix))
        for _ in range(2)
    ]  # fmt: skip
    yield made
    keys = client.keys(f"{prefix}:*")
    if keys:
        client.delete(*keys)


def test_redis_enter_is_told_once_across_processes(two_processes):
    """The first process to enter announces; the other, or a re-entry, does not."""
    (a, _), (b, _) = two_processes
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda n: (a, b)[n % 2].enter(7, 1), range(16)))
    assert verdicts.count(True) == 1
    assert a.enter(8, 1)  # another room has its own state


def test_redis_leave_is_told_once_when_processes_race(settings, two_processes):
    """Both processes settle a due leave at once: exactly one announces it, every round."""
    settings.CHAT_PRESENCE_GRACE_SECONDS = 0  # due at once: the race is what is tested
    (a, _), (b, _) = two_processes
    for round_ in range(20):
        room_id = 100 + round_
        assert a.enter(room_id, 1)
        assert a.left(room_id, 1) == 0
        with ThreadPoolExecutor(2) as pool:
            settle = [pool.submit(s.settle, room_id, 1, f"p{n}") for n, s in enumerate((a, b))]
            verdicts = [future.result() for future in settle]
        assert sorted(verdicts, key=str) == [0.0, None], verdicts
        assert a.settle(room_id, 1, "pa") is None  # told: nothing is left to settle
        assert b.enter(room_id, 1)  # and coming back is news


def test_redis_leave_waits_while_another_process_holds_the_user(settings, two_processes):
    """A live roster field of the user on another process keeps the leave from being told."""
    settings.CHAT_PRESENCE_GRACE_SECONDS = 5  # nothing here waits for it; a busy machine is slow
    (a, store_a), (b, _) = two_processes
    assert a.enter(7, 1)
    store_a.write("pa", [(7, 1, "alice", roster.ONLINE)])  # process A still has a socket
    assert b.left(7, 1) == pytest.approx(5)  # process B's last socket left
    assert b.settle(7, 1, "pb") is None
    assert not b.enter(7, 1)  # still in: a new tab is no news
    store_a.write("pa", [(7, 1, "alice", roster.OFFLINE)])
    assert b.left(7, 1) is not None
    assert 0 < b.settle(7, 1, "pb") <= 5.001  # not due yet: wait that long
    assert not a.enter(7, 1)  # back within the grace: no news


def test_redis_a_user_left_behind_by_a_killed_process_is_settled_by_another(two_processes):
    """State "in" with no live field anywhere (its process died): the grace starts, then told."""
    (a, _), (b, _) = two_processes
    assert a.enter(7, 1)
    verdicts = [b.settle(7, 1, "pb")]
    assert verdicts[0] == pytest.approx(0.3, abs=0.01)
    deadline = time.monotonic() + 5
    while verdicts[-1]:
        assert time.monotonic() < deadline
        time.sleep(verdicts[-1])  # the wait the store named
        verdicts.append(b.settle(7, 1, "pb"))
    assert verdicts[-1] == 0.0
    assert b.enter(7, 1)  # gone and told: coming back is news


async def test_redis_down_sends_no_notice_and_no_error(settings, connect, alice, bob, room):
    """With the notice store unreachable, joins and messages work; no notice, no error frame."""
    settings.REDIS_URL = "redis://127.0.0.1:1"  # nothing listens there
    settings.REDIS_RETRIES = 0
    a = await connect(alice)
    assert "join" in await a.join(room.pk)
    b = await connect(bob)
    assert "join" in await b.join(room.pk)
    await b.send({"command": "send", "room": room.pk, "message": "still here"})
    seen: list[dict] = []
    await a.recv_until(lambda f: seen.append(f) or f.get("message") == "still here", timeout=10)
    assert [f for f in seen if "error" in f or f.get("msg_type") in (4, 5)] == []
