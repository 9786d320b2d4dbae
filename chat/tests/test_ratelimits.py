"""Command budgets (send, join/leave, history): no client exhausts us."""

import asyncio
import math
import os
import time
import uuid

import pytest
import redis
from channels.db import database_sync_to_async

from chat import ratelimit, services
from chat.hub import hub
from chat.models import Room
from multichat_client import ChatClient, Message, RoomError
from testkit.factories import bearer
from testkit.live import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def is_notice_of(username: str):
    return lambda f: f.get("msg_type") in (4, 5) and f.get("username") == username


async def notices_until_own_message(sock, *, of: str, marker: str) -> list[int]:
    """The msg_types of ``of``'s enter/leave notices that arrive before the message ``marker``."""
    seen = []
    while True:
        frame = await sock.raw(timeout=10)
        if frame.get("message") == marker and frame.get("msg_type") == 0:
            return seen
        if is_notice_of(of)(frame):
            seen.append(frame["msg_type"])


async def test_join_leave_flood_is_rate_limited_and_the_room_sees_one_enter_and_one_leave(
    settings, connect, alice, bob, room
):
    """300 join/leave pairs: RATE_LIMITED with retry_after past the burst; 1 enter, 1 leave seen."""
    settings.CHAT_PRESENCE_GRACE_SECONDS = 5  # longer than any gap between the flood's joins
    bob_sock = await connect(bob)
    await bob_sock.join(room.pk)
    sock = await connect(alice)
    joined = refused = 0
    retry_afters = []
    started = time.monotonic()
    for i in range(300):
        await sock.send({"command": "join", "room": room.pk, "ref": i})
        reply = await sock.recv(timeout=10)
        if "join" in reply:
            joined += 1
            await sock.send({"command": "leave", "room": room.pk, "ref": i})
            reply = await sock.recv(timeout=10)
            if "leave" in reply:
                continue
        assert (reply["error"], reply["ref"]) == ("RATE_LIMITED", i), reply
        refused += 1
        retry_afters.append(reply["retry_after"])
    elapsed = time.monotonic() - started
    # Join and leave share one bucket of CHAT_JOIN_BURST refilled at CHAT_JOIN_RATE.
    tokens = settings.CHAT_JOIN_BURST + settings.CHAT_JOIN_RATE * elapsed + 1
    assert refused > 0
    assert joined <= tokens / 2 + 1
    assert all(0 < r <= 1 / settings.CHAT_JOIN_RATE for r in retry_afters), retry_afters
    assert all(abs(r * 10 - round(r * 10)) < 1e-9 for r in retry_afters)  # tenths of a second
    await bob_sock.send({"command": "send", "room": room.pk, "message": "flood over"})
    notices = await notices_until_own_message(bob_sock, of="alice", marker="flood over")
    assert notices == [4]  # one enter, not one per join; the leave waits for the grace
    await sock.close()
    leave = await bob_sock.recv_until(is_notice_of("alice"), timeout=15)
    assert leave["msg_type"] == 5
    assert [f for f in await bob_sock.until_quiet() if is_notice_of("alice")(f)] == []


async def test_a_refused_join_does_not_subscribe_the_socket(settings, connect, alice, room):
    """A join refused for the budget leaves the socket out of the room's group."""
    settings.CHAT_JOIN_RATE = 0.01
    settings.CHAT_JOIN_BURST = 1
    other = await Room.objects.acreate(title="Other")
    sock = await connect(alice)
    assert "join" in await sock.join(room.pk)
    refused = await sock.join(other.pk)
    assert refused["error"] == "RATE_LIMITED"
    assert 0 < refused["retry_after"] <= 100
    assert hub().members(f"chat.room.{other.pk}") == 0
    await database_sync_to_async(services.message_send)(user=alice, room_id=other.pk, text="x")
    assert await sock.silent(0.3)


async def test_history_flood_is_rate_limited_while_another_users_history_works(
    settings, connect, alice, bob, room
):
    """Past the history burst a user gets RATE_LIMITED with retry_after; others are unaffected."""
    settings.CHAT_HISTORY_RATE = 1.0
    settings.CHAT_HISTORY_BURST = 5
    sock = await connect(alice)
    replies = []
    for i in range(30):
        await sock.send({"command": "history", "room": room.pk, "ref": i})
        replies.append(await sock.recv(timeout=10))
    answered = [r for r in replies if "history" in r]
    refused = [r for r in replies if r.get("error") == "RATE_LIMITED"]
    assert len(answered) + len(refused) == 30
    assert 5 <= len(answered) < 30
    assert all(0 < r["retry_after"] <= 1.0 for r in refused)
    assert "try again in" in refused[0]["detail"]
    other = await connect(bob)
    await other.send({"command": "history", "room": room.pk})
    assert "history" in await other.recv()


async def test_rest_history_shares_the_sockets_budget_and_answers_429_with_retry_after(
    settings, connect, alice, room
):
    """History over REST and over the socket draw from one budget; REST says 429 + Retry-After."""
    settings.CHAT_HISTORY_RATE = 0.01
    settings.CHAT_HISTORY_BURST = 3
    client = await database_sync_to_async(bearer)(alice)
    get = database_sync_to_async(lambda: client.get(f"/api/rooms/{room.pk}/messages"))
    sock = await connect(alice)
    for _ in range(2):
        await sock.send({"command": "history", "room": room.pk})
        assert "history" in await sock.recv()
    assert (await get()).status_code == 200
    response = await get()
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "RATE_LIMITED"
    assert 0 < body["retry_after"] <= 100
    assert response["Retry-After"] == str(math.ceil(body["retry_after"]))
    await sock.send({"command": "history", "room": room.pk})
    assert (await sock.recv())["error"] == "RATE_LIMITED"


async def test_a_refused_send_says_when_to_retry(settings, connect, alice, room):
    """RATE_LIMITED on send carries retry_after too (seconds, in tenths)."""
    settings.CHAT_SEND_RATE = 0.5
    settings.CHAT_SEND_BURST = 1
    sock = await connect(alice)
    await sock.join(room.pk)
    for i in range(2):
        await sock.send({"command": "send", "room": room.pk, "message": "m", "ref": i})
    await sock.recv_until(lambda f: "sent" in f)
    error = await sock.recv_until(lambda f: "error" in f)
    assert error["error"] == "RATE_LIMITED"
    assert 0 < error["retry_after"] <= 2.0


async def test_leaving_on_disconnect_or_expulsion_is_never_refused(
    settings, connect, alice, staff, room
):
    """With alice's join budget spent, expulsion and disconnect still take her out and say so."""
    settings.CHAT_JOIN_RATE = 0.01
    settings.CHAT_JOIN_BURST = 2
    settings.CHAT_PRESENCE_GRACE_SECONDS = 0.2
    lounge = await Room.objects.acreate(title="Lounge")
    watcher = await connect(staff)
    await watcher.join(room.pk)
    await watcher.join(lounge.pk)
    sock = await connect(alice)
    await sock.join(room.pk)
    await sock.join(lounge.pk)
    assert (await sock.join(999))["error"] == "RATE_LIMITED"
    # A refused leave command changes nothing: alice is still in the room.
    await sock.send({"command": "leave", "room": room.pk, "ref": "l"})
    refused = await sock.recv()
    assert (refused["error"], refused["ref"]) == ("RATE_LIMITED", "l")
    await watcher.send({"command": "send", "room": room.pk, "message": "still here"})
    assert (await sock.recv())["message"] == "still here"
    lounge.staff_only = True
    await database_sync_to_async(services.room_save)(room=lounge)
    expelled = await sock.recv_until(lambda f: "error" in f)
    assert (expelled["error"], expelled["room"]) == ("ROOM_ACCESS_DENIED", lounge.pk)
    leave = await watcher.recv_until(lambda f: f.get("msg_type") == 5, timeout=10)
    assert (leave["username"], leave["room"]) == ("alice", lounge.pk)
    await sock.close()
    leave = await watcher.recv_until(lambda f: f.get("msg_type") == 5, timeout=10)
    assert (leave["username"], leave["room"]) == ("alice", room.pk)


@pytest.mark.redis
def test_redis_join_and_history_budgets_are_shared_between_processes(
    settings, monkeypatch, redis_server
):
    """Two bucket stores on one Redis (two server processes) draw from one budget per class."""
    settings.CHAT_JOIN_RATE, settings.CHAT_JOIN_BURST = 0.01, 4
    settings.CHAT_HISTORY_RATE, settings.CHAT_HISTORY_BURST = 0.01, 2
    prefix = f"mctest-{uuid.uuid4().hex[:8]}"
    stores = [
        ratelimit.RedisBuckets(redis.Redis.from_url(redis_server.url), prefix) for _ in range(2)
    ]
    turn = iter(stores * 10)
    monkeypatch.setattr(ratelimit, "buckets", lambda: next(turn))
    joins = [ratelimit.take(1, "join").allowed for _ in range(6)]
    assert joins == [True, True, True, True, False, False]
    histories = [ratelimit.take(1, "history") for _ in range(3)]
    assert [v.allowed for v in histories] == [True, True, False]  # its own budget
    assert 0 < histories[2].retry_after <= 100
    assert ratelimit.take(2, "join").allowed  # another user has their own
    stores[0]._client.delete(*stores[0]._client.keys(f"{prefix}:*"))


@pytest.fixture(scope="module")
def strict_server(database_url):
    """A real server whose join budget is one join, refilled every 10 s; alice and a room."""
    live = LiveServer(
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL"),
        extra_env={"CHAT_JOIN_RATE": "0.1", "CHAT_JOIN_BURST": "1", "CHAT_SEND_RATE": "0"},
    ).prepare()
    made = live.seed(users=["alice"], rooms=["General"], tokens=["alice"])
    live.room_id = made.rooms["General"]
    live.token = made.tokens["alice"]
    live.start()
    yield live
    live.stop()


async def test_client_keeps_a_room_whose_rejoin_was_rate_limited(strict_server):
    """ChatClient: a re-join refused for the budget after a drop is retried, the room kept."""
    server = strict_server
    statuses: list[str] = []
    async with ChatClient(server.url, server.token, on_status=statuses.append) as chat:
        await chat.join(server.room_id)  # the whole budget
        await chat._ws.close()  # the connection drops; the client reconnects and re-joins at once
        async with asyncio.timeout(30):
            while not any("rate limited" in s for s in statuses):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            seq = await chat.send(server.room_id, "still joined")
            async for event in chat:
                assert not isinstance(event, RoomError), event
                if isinstance(event, Message) and event.message == "still joined":
                    break
    assert event.seq == seq


def test_a_project_that_sets_no_budget_gets_the_defaults(settings):
    """An embedding project sets none of the CHAT_*_RATE settings: each class still has
    its default budget (read through chat.conf), not none at all."""
    for name in ("CHAT_SEND_RATE", "CHAT_SEND_BURST", "CHAT_UPLOAD_RATE", "CHAT_UPLOAD_BURST"):
        if hasattr(settings, name):
            delattr(settings, name)
    user = 10**9 + int(uuid.uuid4().int % 10**6)  # a bucket no other test used
    verdicts = [ratelimit.take(user, "send").allowed for _ in range(21)]
    assert verdicts == [True] * 20 + [False]  # CHAT_SEND_BURST's default
    verdicts = [ratelimit.take(user, "upload").allowed for _ in range(21)]
    assert verdicts == [True] * 20 + [False]  # CHAT_UPLOAD_BURST's default
