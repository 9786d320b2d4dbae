"""The benchmark's tutorial baseline (bench.tutorial) speaks the protocol subset the load uses."""

import contextlib

import pytest
from channels.db import database_sync_to_async

from chat.events import iso_utc
from chat.models import Message
from chat.services import room_post
from testkit.factories import session_cookie
from testkit.sockets import Communicator, Socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def tutorial():
    """Open sockets on the tutorial app as a user (or anonymously); all closed after the test."""
    from bench.tutorial import application

    opened: list[Socket] = []

    async def open_socket(user=None) -> Socket:
        headers = []
        if user is not None:
            headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
        comm = Communicator(application, "/chat/stream/", headers=headers)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        socket = Socket(comm)
        opened.append(socket)
        return socket

    yield open_socket
    for socket in opened:
        with contextlib.suppress(Exception):  # already closed by the server
            await socket.close()


async def _two_members_get_one_message(tutorial, alice, bob, room) -> None:
    a = await tutorial(alice)
    b = await tutorial(bob)
    assert (await a.join(room.pk))["join"] == room.pk
    assert (await b.join(room.pk))["join"] == room.pk
    await a.send({"command": "send", "room": room.pk, "message": "hello bob", "ref": "r1"})
    first, second = await a.raw(), await a.raw()
    sent, a_frame = (first, second) if "sent" in first else (second, first)
    assert sent == {"sent": room.pk, "seq": 1, "ref": "r1"}
    b_frame = await b.raw()
    stored = await Message.objects.aget(room=room, seq=1)
    assert (stored.text, stored.username, stored.msg_type) == ("hello bob", "alice", 0)
    expected = {
        "msg_type": 0,
        "room": room.pk,
        "username": "alice",
        "message": "hello bob",
        "seq": 1,
        "ts": iso_utc(stored.created),
    }
    assert a_frame == expected
    assert b_frame == expected


async def test_tutorial_members_get_the_same_frame_and_the_message_is_stored(
    tutorial, alice, bob, room
):
    """Both members of a room get the sent message as seq 1, and it is in the database."""
    await _two_members_get_one_message(tutorial, alice, bob, room)


@pytest.mark.redis
async def test_tutorial_members_get_the_message_through_the_core_redis_layer(
    core_layer, tutorial, alice, bob, room
):
    """The same with channels_redis' RedisChannelLayer on a real Redis, as benchmarked."""
    await _two_members_get_one_message(tutorial, alice, bob, room)


async def test_tutorial_anonymous_socket_is_told_to_log_in_and_closed_with_4401(tutorial):
    """A socket without a session gets USER_HAS_TO_LOGIN, then close code 4401."""
    sock = await tutorial(None)
    assert (await sock.raw())["error"] == "USER_HAS_TO_LOGIN"
    assert await sock.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_tutorial_join_staff_only_room_as_non_staff_is_denied(tutorial, alice, staff_room):
    """A non-staff user cannot join a staff-only room, and so cannot send to it."""
    sock = await tutorial(alice)
    assert (await sock.join(staff_room.pk))["error"] == "ROOM_ACCESS_DENIED"
    await sock.send({"command": "send", "room": staff_room.pk, "message": "let me in"})
    assert (await sock.raw())["error"] == "ROOM_ACCESS_DENIED"
    assert not await Message.objects.filter(room=staff_room).aexists()


async def test_tutorial_join_with_since_replays_the_stored_messages_after_it(tutorial, alice, room):
    """join with since answers with last_seq, then sends the messages after since, oldest first."""
    for text in ("one", "two", "three"):
        await database_sync_to_async(room_post)(room_id=room.pk, user=alice, text=text)
    sock = await tutorial(alice)
    reply = await sock.join(room.pk, since=1, ref=5)
    assert reply == {
        "join": room.pk,
        "title": "General",
        "last_seq": 3,
        "staff_only": False,
        "replayed": 2,
        "truncated": False,
        "ref": 5,
    }
    replayed = [await sock.raw(), await sock.raw()]
    assert [(f["seq"], f["message"], f["username"]) for f in replayed] == [
        (2, "two", "alice"),
        (3, "three", "alice"),
    ]
    assert await sock.comm.receive_nothing(timeout=0.2)
