"""Durable history: contiguous seq, history pages, replay on join, gap filling, deletion."""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from chat import services
from chat.models import Message, MsgType, Room

pytestmark = pytest.mark.django_db(transaction=True)


def post_many(room, user, count: int, prefix: str = "m") -> None:
    """Post ``count`` messages through the one posting function (no send-rate limit)."""
    for i in range(count):
        services.room_post(room_id=room.pk, user=user, text=f"{prefix}{i}")


async def test_every_message_is_stored_with_a_contiguous_seq(connect, alice, room):
    """Posted messages are stored numbered 1, 2, 3, ... in the order they were sent."""
    sock = await connect(alice)
    await sock.join(room.pk)
    for i in range(5):
        await sock.send({"command": "send", "room": room.pk, "message": f"n{i}"})
    seqs = [(await sock.recv_until(lambda f: f.get("msg_type") == 0))["seq"] for _ in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    stored = [(m.seq, m.text) async for m in Message.objects.filter(room=room).order_by("seq")]
    assert stored == [(i + 1, f"n{i}") for i in range(5)]
    await room.arefresh_from_db()
    assert room.last_seq == 5


def test_seq_is_per_room(alice, room):
    """Each room counts its own seq from 1."""
    other = Room.objects.create(title="Other")
    a = services.message_send(user=alice, room_id=room.pk, text="a")
    b = services.message_send(user=alice, room_id=other.pk, text="b")
    c = services.message_send(user=alice, room_id=room.pk, text="c")
    assert (a.seq, b.seq, c.seq) == (1, 1, 2)


def test_a_failed_post_does_not_use_up_a_seq(alice, staff_room, room):
    """A post refused inside the transaction rolls back its seq: no hole is left."""
    with pytest.raises(services.ChatError) as refused:
        services.message_send(user=alice, room_id=staff_room.pk, text="no")
    assert refused.value.code == "ROOM_ACCESS_DENIED"
    staff_room.refresh_from_db()
    assert staff_room.last_seq == 0
    assert not Message.objects.exists()


def test_posting_to_a_missing_room_is_room_invalid(alice):
    """A post to a room that does not exist is refused with ROOM_INVALID and stores nothing."""
    with pytest.raises(services.ChatError) as refused:
        services.room_post(room_id=987654, user=alice, text="anyone?")
    assert refused.value.code == "ROOM_INVALID"
    assert not Message.objects.exists()


def test_an_inactive_user_cannot_post_and_uses_no_seq(alice, room):
    """A deactivated account's post is refused before it takes a seq."""
    alice.is_active = False
    alice.save()
    with pytest.raises(services.ChatError) as refused:
        services.room_post(room_id=room.pk, user=alice, text="still here?")
    assert refused.value.code == "ROOM_ACCESS_DENIED"
    room.refresh_from_db()
    assert room.last_seq == 0


async def test_history_returns_the_newest_page_then_older_pages(connect, alice, room):
    """history pages back with before/limit; has_more says when to stop."""
    await database_sync_to_async(post_many)(room, alice, 7)
    sock = await connect(alice)
    await sock.send({"command": "history", "room": room.pk, "limit": 3, "ref": "h"})
    page = await sock.recv()
    assert page["history"] == room.pk
    assert page["ref"] == "h"
    assert [m["seq"] for m in page["messages"]] == [5, 6, 7]
    assert page["has_more"] is True
    await sock.send({"command": "history", "room": room.pk, "limit": 3, "before": 5})
    page = await sock.recv()
    assert [m["seq"] for m in page["messages"]] == [2, 3, 4]
    assert page["has_more"] is True
    await sock.send({"command": "history", "room": room.pk, "limit": 3, "before": 2})
    page = await sock.recv()
    assert [m["message"] for m in page["messages"]] == ["m0"]
    assert page["has_more"] is False


async def test_history_defaults_to_fifty_messages(connect, alice, room):
    """Without limit, a page has 50 messages."""
    await database_sync_to_async(post_many)(room, alice, 60)
    sock = await connect(alice)
    await sock.send({"command": "history", "room": room.pk})
    page = await sock.recv()
    assert [m["seq"] for m in page["messages"]] == list(range(11, 61))
    assert page["has_more"] is True


async def test_history_of_an_empty_room_is_empty(connect, alice, room):
    """An empty room's history is an empty last page."""
    sock = await connect(alice)
    await sock.send({"command": "history", "room": room.pk})
    assert await sock.recv() == {"history": room.pk, "messages": [], "has_more": False}


async def test_history_of_a_missing_room_is_room_invalid(connect, alice):
    """history of a room that does not exist gives ROOM_INVALID."""
    sock = await connect(alice)
    await sock.send({"command": "history", "room": 4242})
    assert (await sock.recv())["error"] == "ROOM_INVALID"


async def test_reconnect_with_since_receives_exactly_the_missed_messages(connect, alice, bob, room):
    """A client away while 100 messages are posted gets exactly those 100, in order, then live."""
    a = await connect(alice)
    await a.join(room.pk)
    await a.send({"command": "send", "room": room.pk, "message": "before"})
    last_seen = (await a.recv_until(lambda f: f.get("msg_type") == 0))["seq"]
    await a.close()

    await database_sync_to_async(post_many)(room, bob, 100, prefix="missed")

    a = await connect(alice)
    reply = await a.join(room.pk, since=last_seen)
    assert (reply["last_seq"], reply["replayed"], reply["truncated"]) == (101, 100, False)
    replayed = [await a.recv() for _ in range(100)]
    assert [f["seq"] for f in replayed] == list(range(2, 102))
    assert [f["message"] for f in replayed] == [f"missed{i}" for i in range(100)]
    await database_sync_to_async(post_many)(room, bob, 1, prefix="live")
    live = await a.recv()
    assert (live["seq"], live["message"]) == (102, "live0")
    assert await a.silent()


async def test_join_with_since_at_the_newest_seq_replays_nothing(connect, alice, room):
    """Nothing is replayed to a client that is up to date."""
    await database_sync_to_async(post_many)(room, alice, 3)
    sock = await connect(alice)
    reply = await sock.join(room.pk, since=3)
    assert (reply["last_seq"], reply["replayed"]) == (3, 0)
    assert await sock.silent()


async def test_replay_longer_than_the_cap_keeps_the_newest_and_says_truncated(
    settings, connect, alice, room
):
    """Over CHAT_REPLAY_MAX, the newest messages are replayed and the reply says truncated."""
    settings.CHAT_REPLAY_MAX = 10
    await database_sync_to_async(post_many)(room, alice, 25)
    sock = await connect(alice)
    reply = await sock.join(room.pk, since=2)
    assert (reply["replayed"], reply["truncated"]) == (10, True)
    assert [(await sock.recv())["seq"] for _ in range(10)] == list(range(16, 26))
    await sock.send({"command": "history", "room": room.pk, "before": 16, "limit": 100})
    rest = await sock.recv()
    assert [m["seq"] for m in rest["messages"]][-13:] == list(range(3, 16))


async def test_replay_racing_with_live_posts_has_no_gap_and_no_duplicate(connect, alice, bob, room):
    """A join with since while others post gives every seq exactly once, in order."""
    await database_sync_to_async(post_many)(room, bob, 50, prefix="old")
    stop = threading.Event()
    posted = []

    def keep_posting():
        i = 0
        try:
            while not stop.is_set() and i < 300:
                posted.append(services.room_post(room_id=room.pk, user=bob, text=f"race{i}").seq)
                i += 1
        finally:
            connection.close()  # this executor thread's connection

    poster = asyncio.get_running_loop().run_in_executor(None, keep_posting)
    await asyncio.sleep(0.05)
    sock = await connect(alice)
    await sock.join(room.pk, since=10)
    await asyncio.sleep(0.3)
    stop.set()
    await poster
    final = posted[-1]
    seen = []
    while not seen or seen[-1] < final:
        seen.append((await sock.recv())["seq"])
    assert seen == list(range(11, final + 1))
    assert await sock.silent()


async def test_a_missed_live_event_is_filled_from_the_database(connect, alice, bob, room):
    """If an event never reaches a socket, the next one brings the missed message first."""
    a = await connect(alice)
    await a.join(room.pk)

    def store_without_publishing():
        # As if the broadcast of seq 1 was lost (a full channel, a layer hiccup).
        with connection.cursor():
            Room.objects.filter(pk=room.pk).update(last_seq=1)
            Message.objects.create(room=room, author=bob, username="bob", text="lost", seq=1)

    await database_sync_to_async(store_without_publishing)()
    await database_sync_to_async(post_many)(room, bob, 1, prefix="next")
    first, second = await a.recv(), await a.recv()
    assert [(first["seq"], first["message"]), (second["seq"], second["message"])] == [
        (1, "lost"),
        (2, "next0"),
    ]


def test_staff_message_delete_leaves_a_tombstone(alice, staff, room):
    """A deleted post keeps its seq with no text; the deletion takes the next seq itself."""
    post_many(room, alice, 3)
    assert services.message_delete(user=staff, room_id=room.pk, seq=2) == 4
    message = Message.objects.get(room=room, seq=2)
    assert (message.deleted, message.text) == (True, "")
    page, _ = services.room_history(user=alice, room_id=room.pk)
    assert [(m.seq, m.deleted, m.message) for m in page] == [
        (1, False, "m0"),
        (2, True, ""),
        (3, False, "m2"),
    ]


async def test_deleting_a_message_tells_connected_clients(connect, alice, staff, room):
    """Members get the delete change live; history shows a tombstone."""
    await database_sync_to_async(post_many)(room, alice, 2)
    sock = await connect(alice)
    await sock.join(room.pk)
    await database_sync_to_async(services.message_delete)(user=staff, room_id=room.pk, seq=1)
    change = await sock.recv()
    assert {k: change[k] for k in ("change", "room", "seq", "target", "username")} == {
        "change": "delete",
        "room": room.pk,
        "seq": 3,
        "target": 1,
        "username": staff.get_username(),
    }
    await sock.send({"command": "history", "room": room.pk})
    first = (await sock.recv())["messages"][0]
    assert (first["seq"], first["deleted"], first["message"]) == (1, True, "")


def test_purge_messages_deletes_only_what_is_older_than_the_retention(settings, alice, room):
    """purge_messages removes messages older than CHAT_RETENTION_DAYS and keeps the rest."""
    post_many(room, alice, 3)
    Message.objects.filter(seq=1).update(created=timezone.now() - timezone.timedelta(days=40))
    settings.CHAT_RETENTION_DAYS = 30
    call_command("purge_messages", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert list(Message.objects.values_list("seq", flat=True)) == [2, 3]


def test_purge_messages_keeps_everything_by_default(alice, room):
    """With the default retention (0), nothing is deleted."""
    post_many(room, alice, 2)
    Message.objects.update(created=timezone.now() - timezone.timedelta(days=4000))
    call_command("purge_messages", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Message.objects.count() == 2


@pytest.mark.postgres
def test_concurrent_posters_get_a_contiguous_seq_on_postgresql(make_user, room):
    """Eight threads posting at once to one room produce seq 1..N with no gap or repeat."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of scripts/test)")
    users = [make_user(f"poster{i}") for i in range(8)]
    errors = []
    barrier = threading.Barrier(len(users))

    def poster(user):
        from django.db import connections

        try:
            barrier.wait()
            post_many(room, user, 25, prefix=user.username)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=poster, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    seqs = sorted(Message.objects.filter(room=room).values_list("seq", flat=True))
    assert seqs == list(range(1, 201))
    room.refresh_from_db()
    assert room.last_seq == 200


def test_room_post_refuses_a_notice_type(alice, room):
    """Enter/leave notices are not posts (chat.presence sends them): room_post stores none."""
    with pytest.raises(ValueError, match="not stored"):
        services.room_post(room_id=room.pk, user=alice, text="joined", msg_type=MsgType.ENTER)
    assert not Message.objects.filter(room=room).exists()
