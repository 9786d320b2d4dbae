"""Read positions, unread counts, mentions and the activity feed (issue 14), socket and REST."""

import asyncio
import contextlib
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Mention, ReadPosition
from testkit.factories import bearer, create_room, create_user, post_messages
from testkit.live import LiveServer, join, next_frame, open_ws
from testkit.servers import PostgresDatabase, postgres_base_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_activity(settings):
    """A tenth of a second per activity tick, so tests wait less (the bound is the same)."""
    settings.CHAT_ACTIVITY_SECONDS = 0.1
    settings.CHAT_SEND_RATE = 0


def read_position(user, room) -> int:
    found = ReadPosition.objects.filter(user=user, room=room).values_list("seq", flat=True)
    return found.first() or 0


def mark(client: Client, room_id: int, seq: object):
    return client.post(
        f"/api/rooms/{room_id}/read", json.dumps({"seq": seq}), content_type="application/json"
    )


# --- services -----------------------------------------------------------------


def test_read_position_never_moves_back_and_is_clamped_to_last_seq(alice, room):
    """read_mark stores max(old, seq), never above the room's last seq."""
    post_messages(room.pk, ["a", "b", "c"])
    assert services.read_mark(user=alice, room_id=room.pk, seq=2) == (2, 2)
    assert services.read_mark(user=alice, room_id=room.pk, seq=1) == (2, 2)
    assert services.read_mark(user=alice, room_id=room.pk, seq=99) == (3, 3)
    assert read_position(alice, room) == 3


def test_read_is_refused_like_history(alice, staff_room):
    """No such room: ROOM_INVALID; a staff-only room: ROOM_ACCESS_DENIED; nothing stored."""
    with pytest.raises(ChatError) as missing:
        services.read_mark(user=alice, room_id=staff_room.pk + 100, seq=1)
    assert missing.value.code == ErrorCode.ROOM_INVALID
    with pytest.raises(ChatError) as denied:
        services.read_mark(user=alice, room_id=staff_room.pk, seq=1)
    assert denied.value.code == ErrorCode.ROOM_ACCESS_DENIED
    assert not ReadPosition.objects.exists()


def test_posting_marks_the_posters_own_message_read(alice, bob, room):
    """The poster's read position moves to their post; others' stay."""
    services.message_send(user=bob, room_id=room.pk, text="one")
    services.message_send(user=alice, room_id=room.pk, text="two")
    services.message_send(user=alice, room_id=room.pk, text="hi @bob")  # the mention path
    assert read_position(alice, room) == 3
    assert read_position(bob, room) == 1


def test_mentions_only_users_who_may_enter_and_never_the_author(alice, bob, staff, room):
    """@name of an enterable user is stored; unknown names, e-mails and the author are not."""
    create_user("carol")
    text = "@bob @alice @nobody mail me at x@carol.org, and @stella."
    message = services.message_send(user=alice, room_id=room.pk, text=text)
    mentioned = set(
        Mention.objects.filter(message=message).values_list("user__username", flat=True)
    )
    assert mentioned == {"bob", "stella"}


def test_a_staff_only_room_mentions_staff_only(bob, staff, staff_room):
    """In a staff-only room, @bob (not staff) is plain text."""
    services.message_send(user=staff, room_id=staff_room.pk, text="@bob look")
    assert not Mention.objects.exists()


def test_room_mention_is_for_staff_only(alice, bob, staff, room):
    """@room by staff flags the message for everyone; by others it is plain text."""
    plain = services.message_send(user=alice, room_id=room.pk, text="hey @room")
    loud = services.message_send(user=staff, room_id=room.pk, text="@room meeting now")
    assert (plain.mentions_room, loud.mentions_room) == (False, True)
    counts = selectors.unread_mentions(user_ids=[alice.pk, bob.pk, staff.pk])
    assert counts[alice.pk][room.pk] == 1
    assert counts[bob.pk][room.pk] == 1
    assert counts[staff.pk][room.pk] == 0  # the author has read their own post


def test_reading_clears_unread_mentions(alice, bob, room):
    """Mentions above the read position count; reading past them clears them."""
    services.message_send(user=alice, room_id=room.pk, text="@bob one")
    services.message_send(user=alice, room_id=room.pk, text="@bob two")
    assert selectors.unread_mentions(user_ids=[bob.pk])[bob.pk][room.pk] == 2
    services.read_mark(user=bob, room_id=room.pk, seq=1)
    assert selectors.unread_mentions(user_ids=[bob.pk])[bob.pk][room.pk] == 1
    services.read_mark(user=bob, room_id=room.pk, seq=2)
    assert selectors.unread_mentions(user_ids=[bob.pk])[bob.pk][room.pk] == 0


# --- REST -----------------------------------------------------------------------


def test_room_list_carries_read_seq_unread_and_mentions(alice, bob, room, staff_room):
    """GET /api/rooms: each room's read_seq, unread and mentions; no staff-only room for bob."""
    services.message_send(user=alice, room_id=room.pk, text="hello")
    services.message_send(user=alice, room_id=room.pk, text="@bob hello")
    services.message_send(user=alice, room_id=room.pk, text="bye")
    client = bearer(bob)
    assert client.get("/api/rooms").json()["rooms"] == [
        {
            "id": room.pk,
            "title": "General",
            "staff_only": False,
            "kind": "room",
            "members": None,
            "last_seq": 3,
            "read_seq": 0,
            "posts": 3,
            "read_posts": 0,
            "unread": 3,
            "mentions": 1,
            "created_by": None,
            "left": False,
        }
    ]
    response = mark(client, room.pk, 2)
    assert response.status_code == 200
    assert response.json() == {"read": room.pk, "seq": 2, "posts": 2}
    [listed] = client.get("/api/rooms").json()["rooms"]
    assert (listed["read_seq"], listed["unread"], listed["mentions"]) == (2, 1, 0)


def test_marking_read_refuses_like_history(alice, staff_room):
    """POST read to a staff-only room: 403, and no position stored; a bad seq: 422."""
    client = bearer(alice)
    assert mark(client, staff_room.pk, 1).json()["error"] == "ROOM_ACCESS_DENIED"
    assert mark(client, staff_room.pk + 100, 1).json()["error"] == "ROOM_INVALID"
    bad = mark(client, staff_room.pk, -1)
    assert (bad.status_code, bad.json()["error"]) == (422, "BAD_REQUEST")
    assert not ReadPosition.objects.exists()


def test_mentions_list_newest_first_paged_and_only_enterable_rooms(alice, bob, staff, room):
    """GET /api/mentions: newest first, paged by id; a room made staff-only drops out."""
    for i in range(3):
        services.message_send(user=alice, room_id=room.pk, text=f"@bob {i}")
    services.message_send(user=staff, room_id=room.pk, text="@room all hands")
    secret = create_room("Later secret")
    services.message_send(user=alice, room_id=secret.pk, text="@bob secret")
    secret.refresh_from_db()
    secret.staff_only = True
    services.room_save(room=secret)
    client = bearer(bob)
    first = client.get("/api/mentions?limit=2").json()
    assert [m["message"] for m in first["mentions"]] == ["@room all hands", "@bob 2"]
    assert first["has_more"] is True
    assert first["mentions"][0] == {
        "mention": room.pk,
        "seq": 4,
        "id": first["mentions"][0]["id"],
        "username": "stella",
        "message": "@room all hands",
        "ts": first["mentions"][0]["ts"],
    }
    rest = client.get(f"/api/mentions?before={first['mentions'][1]['id']}").json()
    assert [m["message"] for m in rest["mentions"]] == ["@bob 1", "@bob 0"]
    assert rest["has_more"] is False
    assert "secret" not in json.dumps(client.get("/api/mentions").json())


# --- socket ---------------------------------------------------------------------


async def test_read_reaches_every_socket_of_the_user_and_join_says_where(connect, alice, room):
    """read on one socket: both sockets get the read frame; a later join carries read_seq."""
    await database_sync_to_async(post_messages)(room.pk, ["a", "b", "c"])
    phone, laptop = await connect(alice), await connect(alice)
    await phone.send({"command": "read", "room": room.pk, "seq": 2, "ref": "r"})
    assert await phone.recv() == {"read": room.pk, "seq": 2, "posts": 2, "ref": "r"}
    assert await laptop.recv_until(lambda f: "read" in f) == {"read": room.pk, "seq": 2, "posts": 2}
    assert await phone.recv_until(lambda f: "read" in f) == {"read": room.pk, "seq": 2, "posts": 2}
    reply = await laptop.join(room.pk)
    assert (reply["last_seq"], reply["read_seq"]) == (3, 2)


async def test_read_errors_as_for_history(connect, alice, staff_room):
    """A staff-only room, a bad room, a bad seq: the history errors, with the ref."""
    sock = await connect(alice)
    cases = [
        (staff_room.pk, 1, "ROOM_ACCESS_DENIED"),
        ("x", 1, "ROOM_INVALID"),
        (staff_room.pk, -1, "BAD_REQUEST"),
    ]
    for room_id, seq, code in cases:
        await sock.send({"command": "read", "room": room_id, "seq": seq, "ref": 1})
        reply = await sock.recv()
        assert (reply["error"], reply["ref"]) == (code, 1)
    await sock.send({"command": "read", "room": staff_room.pk, "seq": 1, "extra": 1})
    assert (await sock.recv())["error"] == "BAD_REQUEST"


def is_activity(frame: dict) -> bool:
    return "activity" in frame


async def test_a_mention_notifies_every_socket_of_the_user_without_joining(
    connect, alice, bob, room
):
    """bob has joined nothing: he gets the mention frame, then activity with his count."""
    bob_sock = await connect(bob)
    alice_sock = await connect(alice)
    await alice_sock.join(room.pk)
    await alice_sock.send({"command": "send", "room": room.pk, "message": "hi @bob!"})
    mention = await bob_sock.recv_until(lambda f: "mention" in f)
    assert {k: mention[k] for k in ("mention", "seq", "username", "message")} == {
        "mention": room.pk,
        "seq": 1,
        "username": "alice",
        "message": "hi @bob!",
    }
    activity = await bob_sock.recv_until(is_activity)
    assert activity == {"activity": [{"room": room.pk, "last_seq": 1, "posts": 1, "mentions": 1}]}
    # Reading clears the count: the next activity frame for bob says 0.
    await bob_sock.send({"command": "read", "room": room.pk, "seq": 1})
    cleared = await bob_sock.recv_until(is_activity)
    assert cleared == {"activity": [{"room": room.pk, "last_seq": 1, "posts": 1, "mentions": 0}]}


async def test_activity_lists_new_messages_of_rooms_not_joined_coalesced(connect, alice, bob, room):
    """Five posts in one tick: one activity entry with the newest seq, for a socket in no room."""
    sock = await connect(bob)
    await database_sync_to_async(post_messages)(room.pk, ["1", "2", "3", "4", "5"], "alice")
    frame = await sock.recv_until(lambda f: is_activity(f) and f["activity"][0]["last_seq"] == 5)
    assert frame == {"activity": [{"room": room.pk, "last_seq": 5, "posts": 5, "mentions": 0}]}


async def test_staff_only_rooms_never_reach_others_activity_or_mentions(
    connect, alice, staff, room, staff_room
):
    """Staff post (and @alice) in a staff-only room: alice's sockets hear nothing of it."""
    alice_sock = await connect(alice)
    staff_sock = await connect(staff)

    def post():
        services.message_send(user=staff, room_id=staff_room.pk, text="@alice @room secret")
        services.message_send(user=staff, room_id=room.pk, text="open")

    await database_sync_to_async(post)()
    frame = await alice_sock.recv_until(is_activity)
    assert frame == {"activity": [{"room": room.pk, "last_seq": 1, "posts": 1, "mentions": 0}]}
    seen = await staff_sock.recv_until(is_activity)
    assert sorted(e["room"] for e in seen["activity"]) == sorted([room.pk, staff_room.pk])
    assert str(staff_room.pk) not in json.dumps(await alice_sock.until_quiet(0.3))
    assert not await Mention.objects.filter(user=alice).aexists()


async def test_a_room_made_staff_only_drops_out_of_activity_at_once(connect, alice, staff, room):
    """Activity follows permissions when it is sent, not when the message was stored."""
    sock = await connect(alice)
    await database_sync_to_async(post_messages)(room.pk, ["before"])
    assert (await sock.recv_until(is_activity))["activity"][0]["room"] == room.pk

    def hide_and_post():
        room.refresh_from_db()
        room.staff_only = True
        services.room_save(room=room)
        post_messages(room.pk, ["after"], "stella")

    await database_sync_to_async(hide_and_post)()
    assert not [f for f in await sock.until_quiet(0.5) if is_activity(f)]
    alice.is_staff = True  # and back for a staff user, at once
    await database_sync_to_async(alice.save)()
    await database_sync_to_async(services.user_access_changed)(user_id=alice.pk)
    # The socket re-reads its user when the change notice lands: post until it shows.
    frame = None
    for attempt in range(20):
        await database_sync_to_async(post_messages)(room.pk, [f"staff now {attempt}"], "stella")
        with contextlib.suppress(TimeoutError):
            frame = await sock.recv_until(is_activity, timeout=0.5)
            break
    assert frame is not None
    assert frame["activity"] == [
        {"room": room.pk, "last_seq": 2 + attempt + 1, "posts": 2 + attempt + 1, "mentions": 0}
    ]


async def test_staff_room_mention_notifies_everyone_who_may_enter(connect, alice, bob, staff, room):
    """@room by staff: alice and bob (in no room) get the mention frame; the author does not."""
    alice_sock, bob_sock, staff_sock = (
        await connect(alice),
        await connect(bob),
        await connect(staff),
    )
    await staff_sock.join(room.pk)
    await staff_sock.send({"command": "send", "room": room.pk, "message": "@room standup"})
    for sock in (alice_sock, bob_sock):
        got = await sock.recv_until(lambda f: "mention" in f)
        assert (got["mention"], got["message"], got["username"]) == (
            room.pk,
            "@room standup",
            "stella",
        )
        activity = await sock.recv_until(is_activity)
        assert activity["activity"] == [{"room": room.pk, "last_seq": 1, "posts": 1, "mentions": 1}]
    assert (await staff_sock.recv_until(is_activity))["activity"][0]["mentions"] == 0
    assert not [f for f in await staff_sock.until_quiet(0.3) if "mention" in f]


async def test_joined_rooms_are_in_activity_too(connect, alice, bob, room):
    """A room the socket joined also shows in its activity (the badge of the open room)."""
    sock = await connect(bob)
    await sock.join(room.pk)
    await database_sync_to_async(post_messages)(room.pk, ["x"], "alice")
    assert (await sock.recv())["message"] == "x"
    assert (await sock.recv_until(is_activity))["activity"][0]["room"] == room.pk


# --- two processes on one Redis and one PostgreSQL ---------------------------------


@pytest.fixture
def cluster(redis_server):
    """Two server processes sharing one PostgreSQL database and one Redis (pass 2 only)."""
    base = postgres_base_url()
    if base is None:
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of scripts/test)")
    database = PostgresDatabase.create(base, migrated=True)
    env = {"CHANNEL_LAYER_PREFIX": f"mcaware-{uuid.uuid4().hex[:8]}", "CHAT_SEND_RATE": "0"}
    servers = [
        LiveServer(database_url=database.url, redis_url=redis_server.url, extra_env=env)
        for _ in range(2)
    ]
    servers[0].prepare()
    seeded = servers[0].seed(
        users=["alice", "bob"], staff=["stella"], rooms=["General"], staff_rooms=["Staff"]
    )
    for server in servers:
        server.rooms = seeded.rooms
        server.start()
    yield servers
    for server in servers:
        server.stop()
    database.drop()


@pytest.mark.redis
@pytest.mark.postgres
async def test_two_processes_share_read_positions_mentions_and_activity(cluster):
    """alice on A mentions bob, who is on B and A: both his sockets are told; his read on B
    reaches his socket on A; the staff-only room's traffic never reaches bob."""
    a, b = cluster
    general, staff_room = a.rooms["General"], a.rooms["Staff"]
    alice = await open_ws(a, "alice")
    stella = await open_ws(a, "stella")
    bob_b = await open_ws(b, "bob")
    bob_a = await open_ws(a, "bob")
    await join(alice, general)
    await join(stella, staff_room)
    await stella.send(json.dumps({"command": "send", "room": staff_room, "message": "@bob hidden"}))
    await alice.send(json.dumps({"command": "send", "room": general, "message": "@bob look"}))
    for ws in (bob_b, bob_a):
        mention = await next_frame(ws, lambda f: "mention" in f)
        assert (mention["mention"], mention["message"]) == (general, "@bob look")
        activity = await next_frame(ws, lambda f: "activity" in f)
        assert activity["activity"] == [{"room": general, "last_seq": 1, "posts": 1, "mentions": 1}]
    await bob_b.send(json.dumps({"command": "read", "room": general, "seq": 1}))
    assert await next_frame(bob_a, lambda f: "read" in f) == {"read": general, "seq": 1, "posts": 1}
    cleared = await next_frame(bob_a, lambda f: "activity" in f)
    assert cleared["activity"] == [{"room": general, "last_seq": 1, "posts": 1, "mentions": 0}]
    reply = await join(bob_a, general)
    assert reply["read_seq"] == 1
    await stella.send(json.dumps({"command": "send", "room": staff_room, "message": "again"}))
    await alice.send(json.dumps({"command": "send", "room": general, "message": "last"}))
    seen = []
    async with asyncio.timeout(5):
        while not seen or seen[-1].get("activity") is None:
            seen.append(json.loads(await bob_b.recv()))
    assert f'"room":{staff_room},' not in json.dumps(seen, separators=(",", ":"))
    assert "hidden" not in json.dumps(seen)
    for ws in (alice, stella, bob_a, bob_b):
        await ws.close()


def test_a_username_that_is_an_email_address_is_mentioned_by_it(alice, room):
    """Sites that log in by e-mail have usernames like ann@example.com: @ann@example.com,
    followed by a comma or a full stop, mentions her; her address alone does not."""
    create_user("ann@example.com")
    for text in ("@ann@example.com, look", "thanks @ann@example.com.", "mail ann@example.com"):
        services.message_send(user=alice, room_id=room.pk, text=text)
    mentioned = list(Mention.objects.values_list("message__text", "user__username"))
    assert sorted(mentioned) == [
        ("@ann@example.com, look", "ann@example.com"),
        ("thanks @ann@example.com.", "ann@example.com"),
    ]
