"""Limits, access re-checks and bad input: nobody gets where they don't belong, nothing crashes."""

from importlib import import_module

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.sessions.models import Session
from django.db import transaction
from django.test import Client, RequestFactory

from chat import ratelimit, services
from chat.models import Message, Room

pytestmark = pytest.mark.django_db(transaction=True)


def is_message(frame: dict) -> bool:
    return frame.get("msg_type") == 0


async def test_sending_faster_than_the_rate_limit_is_refused(settings, connect, alice, bob, room):
    """Past the burst, sends get RATE_LIMITED and are not stored; other users are unaffected."""
    settings.CHAT_SEND_RATE = 0.5
    settings.CHAT_SEND_BURST = 3
    a = await connect(alice)
    await a.join(room.pk)
    for i in range(3):
        await a.send({"command": "send", "room": room.pk, "message": f"ok{i}", "ref": i})
        await a.recv_until(lambda f: "sent" in f)
    await a.send({"command": "send", "room": room.pk, "message": "too fast", "ref": "x"})
    error = await a.recv_until(lambda f: "error" in f)
    assert (error["error"], error["ref"]) == ("RATE_LIMITED", "x")
    assert "try again in" in error["detail"]
    b = await connect(bob)
    await b.join(room.pk)
    await b.send({"command": "send", "room": room.pk, "message": "bob is fine", "ref": 1})
    assert (await b.recv_until(lambda f: "sent" in f))["seq"] == 4
    assert await Message.objects.filter(text="too fast").acount() == 0


@pytest.mark.redis
def test_redis_rate_limit_is_shared_between_processes(redis_server):
    """Two bucket stores on one Redis (two server processes) draw from one bucket."""
    import uuid

    prefix = f"mctest-{uuid.uuid4().hex[:8]}"
    import redis

    first = ratelimit.RedisBuckets(redis.Redis.from_url(redis_server.url), prefix)
    second = ratelimit.RedisBuckets(redis.Redis.from_url(redis_server.url), prefix)
    verdicts = [store.take("send:1", rate=0.01, burst=4).allowed for store in (first, second) * 3]
    assert verdicts == [True, True, True, True, False, False]
    assert second.take("send:2", rate=0.01, burst=4).allowed  # another user has their own


async def test_joining_more_rooms_than_allowed_is_refused(settings, connect, alice):
    """A socket may join CHAT_MAX_ROOMS_PER_SOCKET rooms."""
    settings.CHAT_MAX_ROOMS_PER_SOCKET = 2
    rooms = [await Room.objects.acreate(title=f"R{i}") for i in range(3)]
    sock = await connect(alice)
    assert "join" in await sock.join(rooms[0].pk)
    assert "join" in await sock.join(rooms[1].pk)
    assert (await sock.join(rooms[2].pk))["error"] == "TOO_MANY_ROOMS"
    assert "join" in await sock.join(rooms[1].pk)  # re-joining a joined room is fine


async def test_opening_more_sockets_than_allowed_is_refused(settings, connect, alice, bob):
    """Past CHAT_MAX_SOCKETS_PER_USER a new socket gets TOO_MANY_CONNECTIONS and close 1008."""
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    first = await connect(alice)
    await connect(alice)
    third = await connect(alice)
    assert (await third.recv())["error"] == "TOO_MANY_CONNECTIONS"
    assert await third.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 1008}
    await connect(bob)  # other users are not counted against alice
    await first.close()
    fourth = await connect(alice)
    assert await fourth.comm.receive_nothing(timeout=0.2)


async def test_room_made_staff_only_takes_non_staff_members_out(connect, alice, staff, room):
    """When a room becomes staff-only, non-staff sockets leave it with an error; staff stay."""
    a = await connect(alice)
    s = await connect(staff)
    await a.join(room.pk)
    await s.join(room.pk)
    room.staff_only = True
    await database_sync_to_async(services.room_save)(room=room)
    error = await a.recv_until(lambda f: "error" in f)
    assert (error["error"], error["room"]) == ("ROOM_ACCESS_DENIED", room.pk)
    await s.send({"command": "send", "room": room.pk, "message": "staff only now"})
    assert (await s.recv_until(is_message))["message"] == "staff only now"
    assert await a.silent(0.3)
    await a.send({"command": "send", "room": room.pk, "message": "still here?"})
    assert (await a.recv())["error"] == "ROOM_ACCESS_DENIED"


async def test_deleted_room_takes_its_members_out(connect, alice, room):
    """Deleting a room sends its members ROOM_INVALID naming the room."""
    room_id = room.pk
    a = await connect(alice)
    await a.join(room_id)
    await database_sync_to_async(services.room_delete)(room=room)
    error = await a.recv_until(lambda f: "error" in f)
    assert (error["error"], error["room"]) == ("ROOM_INVALID", room_id)


async def test_demoted_user_is_taken_out_of_staff_rooms(connect, staff, room, staff_room):
    """A staff user made non-staff leaves staff-only rooms at once and keeps the others."""
    s = await connect(staff)
    await s.join(room.pk)
    await s.join(staff_room.pk)
    staff.is_staff = False
    await staff.asave()
    error = await s.recv_until(lambda f: "error" in f)
    assert (error["error"], error["room"]) == ("ROOM_ACCESS_DENIED", staff_room.pk)
    await s.send({"command": "send", "room": room.pk, "message": "still in general", "ref": 1})
    assert (await s.recv_until(lambda f: "sent" in f))["sent"] == room.pk
    await s.send({"command": "send", "room": staff_room.pk, "message": "x", "msg_type": 0})
    assert (await s.recv_until(lambda f: "error" in f))["error"] == "ROOM_ACCESS_DENIED"


async def test_deactivated_user_is_disconnected(connect, alice, room):
    """A user made inactive is told to log in and closed with 4401."""
    a = await connect(alice)
    await a.join(room.pk)
    alice.is_active = False
    await alice.asave()
    assert (await a.recv_until(lambda f: "error" in f))["error"] == "USER_HAS_TO_LOGIN"
    assert await a.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_password_change_elsewhere_disconnects_the_socket(connect, alice, room):
    """A new password invalidates existing sessions, and their sockets close."""
    a = await connect(alice)
    alice.set_password("a-whole-new-password")
    await alice.asave()
    assert (await a.recv_until(lambda f: "error" in f))["error"] == "USER_HAS_TO_LOGIN"


async def test_logging_out_in_another_tab_closes_that_sessions_sockets(alice, room):
    """Logging out closes the sockets of that session only; another session's socket stays."""
    from config.asgi import application
    from testkit.sockets import Communicator

    def logged_in_client():
        client = Client()
        client.force_login(alice)
        return client

    tab_client = await database_sync_to_async(logged_in_client)()
    other_client = await database_sync_to_async(logged_in_client)()

    async def socket_for(client):
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        comm = Communicator(
            application,
            "/chat/stream/",
            headers=[
                (b"cookie", cookie),
                (b"origin", b"http://localhost"),
                (b"host", b"localhost"),
            ],
        )
        assert (await comm.connect(timeout=5))[0]
        return comm

    tab = await socket_for(tab_client)
    other = await socket_for(other_client)
    try:
        await database_sync_to_async(tab_client.post)("/logout/")
        assert (await tab.receive_json_from(timeout=3))["error"] == "USER_HAS_TO_LOGIN"
        assert await tab.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}
        assert await other.receive_nothing(timeout=0.3)
    finally:
        await tab.disconnect()
        await other.disconnect()


class RolledBack(Exception):
    """Raised to roll a transaction back."""


def log_out_of_a_new_session(user, *, roll_back: bool) -> str:
    """Log ``user`` out of a new session inside a transaction; returns the session's key."""
    request = RequestFactory().post("/logout/")
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    request.session.create()
    request.user = user
    key = request.session.session_key
    try:
        with transaction.atomic():
            logout(request)  # user_logged_out: chat.signals ends the session's sockets
            if roll_back:
                raise RolledBack
    except RolledBack:
        pass
    return key


async def test_a_rolled_back_logout_closes_no_socket(alice, user_events):
    """The logout notice goes out after the commit: a rolled-back logout publishes nothing."""
    kept = await database_sync_to_async(log_out_of_a_new_session)(alice, roll_back=True)
    assert await Session.objects.filter(session_key=kept).aexists()  # it was rolled back
    ended = await database_sync_to_async(log_out_of_a_new_session)(alice, roll_back=False)
    event = await user_events()  # the first one published: the committed logout's
    assert (event["type"], event["session_key"]) == ("session.ended", ended)
