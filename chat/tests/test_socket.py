"""The chat socket end to end, through the real ASGI app (routing, origin check, auth)."""

import pytest

from chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_socket_is_told_to_log_in_and_closed_with_4401(connect):
    """A socket without a session gets USER_HAS_TO_LOGIN, then close code 4401."""
    sock = await connect(None)
    assert (await sock.recv())["error"] == "USER_HAS_TO_LOGIN"
    assert await sock.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_handshake_with_forged_origin_is_refused(connect, alice):
    """A page on another site cannot open a socket with the visitor's cookie."""
    await connect(alice, origin="http://evil.example", expect=False)


async def test_join_replies_with_title_last_seq_and_echoes_ref(connect, alice, room):
    """join answers with the room's title and newest seq, echoing ref."""
    sock = await connect(alice)
    reply = await sock.join(room.pk, ref="r1")
    assert reply == {
        "join": room.pk,
        "title": "General",
        "last_seq": 0,
        "staff_only": False,
        "kind": "room",
        "replayed": 0,
        "truncated": False,
        "read_seq": 0,
        "posts": 0,
        "read_posts": 0,
        "ref": "r1",
    }


async def test_join_accepts_numeric_string_id(connect, alice, room):
    """Ids may be sent as numeric strings."""
    sock = await connect(alice)
    assert (await sock.join(str(room.pk)))["join"] == room.pk


@pytest.mark.parametrize("bad_id", [999999, "abc", -1, 0, 1.5, True, None, [1], 2**70])
async def test_join_of_missing_or_malformed_room_is_room_invalid(connect, alice, room, bad_id):
    """A room id that names no room, or is not an id, gives ROOM_INVALID."""
    sock = await connect(alice)
    reply = await sock.join(bad_id, ref=7)
    assert reply["error"] == "ROOM_INVALID"
    assert reply["ref"] == 7
    assert (await sock.join(room.pk))["join"] == room.pk  # the socket still works


async def test_join_staff_only_room_as_non_staff_is_denied(connect, alice, staff_room):
    """A non-staff user guessing a staff-only room's id is refused."""
    sock = await connect(alice)
    assert (await sock.join(staff_room.pk))["error"] == "ROOM_ACCESS_DENIED"
    await sock.send({"command": "send", "room": staff_room.pk, "message": "let me in"})
    assert (await sock.recv())["error"] == "ROOM_ACCESS_DENIED"
    await sock.send({"command": "history", "room": staff_room.pk})
    assert (await sock.recv())["error"] == "ROOM_ACCESS_DENIED"
    assert not await Message.objects.filter(room=staff_room).aexists()


async def test_non_staff_never_receives_staff_room_events(connect, alice, staff, staff_room):
    """Nothing posted in a staff-only room reaches a non-staff socket that tried to join it."""
    intruder = await connect(alice)
    assert (await intruder.join(staff_room.pk))["error"] == "ROOM_ACCESS_DENIED"
    insider = await connect(staff)
    await insider.join(staff_room.pk)
    await insider.send({"command": "send", "room": staff_room.pk, "message": "secret"})
    await insider.recv_until(lambda f: f.get("message") == "secret")
    assert await intruder.silent(0.3)


async def test_staff_can_join_staff_only_room(connect, staff, staff_room):
    """Staff enter staff-only rooms."""
    sock = await connect(staff)
    assert (await sock.join(staff_room.pk))["staff_only"] is True


async def test_send_to_a_room_not_joined_is_denied(connect, alice, room):
    """send needs a join first."""
    sock = await connect(alice)
    await sock.send({"command": "send", "room": room.pk, "message": "hi", "ref": "x"})
    assert await sock.recv() == {
        "error": "ROOM_ACCESS_DENIED",
        "detail": f"Join room {room.pk} before sending to it.",
        "ref": "x",
    }


async def test_two_users_in_one_room_see_each_others_messages(connect, alice, bob, room):
    """A message reaches every member, sender included, with seq and ts."""
    a = await connect(alice)
    b = await connect(bob)
    await a.join(room.pk)
    await b.join(room.pk)
    await a.send({"command": "send", "room": room.pk, "message": "hello bob"})
    for sock in (a, b):
        frame = await sock.recv_until(lambda f: f.get("msg_type") == 0)
        assert frame["username"] == "alice"
        assert frame["message"] == "hello bob"
        assert frame["room"] == room.pk
        assert frame["seq"] == 1
        assert frame["ts"].endswith("Z")
    await b.send({"command": "send", "room": room.pk, "message": "hi alice"})
    frame = await a.recv_until(lambda f: f.get("msg_type") == 0)
    assert (frame["username"], frame["message"], frame["seq"]) == ("bob", "hi alice", 2)


@pytest.mark.redis
@pytest.mark.parametrize("layer", ["redis_layer", "core_layer"])
async def test_room_and_user_events_reach_sockets_through_a_real_redis_layer(
    request, layer, connect, alice, bob, room
):
    """On channels_redis (pub/sub and list-based), room events and user changes reach sockets."""
    request.getfixturevalue(layer)
    a = await connect(alice)
    b = await connect(bob)
    await a.join(room.pk)
    await b.join(room.pk)
    await a.send({"command": "send", "room": room.pk, "message": "over redis"})
    frame = await b.recv_until(lambda f: f.get("msg_type") == 0)
    assert (frame["username"], frame["message"], frame["seq"]) == ("alice", "over redis", 1)
    bob.is_active = False  # a user event, through the shared user-events group
    await bob.asave()
    assert (await b.recv_until(lambda f: "error" in f))["error"] == "USER_HAS_TO_LOGIN"


@pytest.mark.redis
async def test_redis_layer_keeps_an_idle_socket_subscribed_past_redis_timeouts(
    redis_layer, connect, alice, bob, room
):
    """A socket idle longer than redis-py's default 5 s socket timeout still gets messages."""
    import asyncio

    a = await connect(alice)
    await a.join(room.pk)
    await asyncio.sleep(7)
    b = await connect(bob)
    await b.join(room.pk)
    await b.send({"command": "send", "room": room.pk, "message": "still there?"})
    frame = await a.recv_until(lambda f: f.get("msg_type") == 0, timeout=5)
    assert frame["message"] == "still there?"


async def test_send_with_ref_is_acknowledged_with_its_seq(connect, alice, room):
    """A send carrying ref gets {"sent": room, "seq": S, "ref": R}."""
    sock = await connect(alice)
    await sock.join(room.pk)
    await sock.send({"command": "send", "room": room.pk, "message": "one", "ref": 41})
    assert await sock.recv_until(lambda f: "sent" in f) == {"sent": room.pk, "seq": 1, "ref": 41}


async def test_one_socket_carries_several_rooms(connect, alice, bob, room, transactional_db):
    """Messages of each joined room arrive on the one socket, tagged with their room."""
    from chat.models import Room

    other = await Room.objects.acreate(title="Other")
    a = await connect(alice)
    await a.join(room.pk)
    await a.join(other.pk)
    b = await connect(bob)
    await b.join(other.pk)
    await b.send({"command": "send", "room": other.pk, "message": "in other"})
    frame = await a.recv_until(lambda f: f.get("msg_type") == 0)
    assert (frame["room"], frame["message"]) == (other.pk, "in other")


async def test_leave_stops_delivery(connect, alice, bob, room):
    """After leave, the socket gets no more of the room's messages."""
    a = await connect(alice)
    await a.join(room.pk)
    await a.send({"command": "leave", "room": room.pk, "ref": "bye"})
    assert await a.recv_until(lambda f: "leave" in f) == {"leave": room.pk, "ref": "bye"}
    b = await connect(bob)
    await b.join(room.pk)
    await b.send({"command": "send", "room": room.pk, "message": "anyone?"})
    await b.recv_until(lambda f: f.get("message") == "anyone?")
    assert await a.silent(0.3)


async def test_leave_of_a_room_not_joined_is_room_invalid(connect, alice, room):
    """Leaving what was never joined is an error, and harmless."""
    sock = await connect(alice)
    await sock.send({"command": "leave", "room": room.pk})
    assert (await sock.recv())["error"] == "ROOM_INVALID"


async def test_enter_and_leave_notices_reach_the_room(settings, connect, alice, bob, room):
    """Joining and disconnecting announce the user when the setting is on."""
    settings.CHAT_PRESENCE_GRACE_SECONDS = 0  # the leave at once (chat/tests/test_notices.py)
    a = await connect(alice)
    await a.join(room.pk)
    b = await connect(bob)
    await b.join(room.pk)
    own = await a.recv_until(lambda f: f.get("msg_type") == 4)
    assert own["username"] == "alice"
    enter = await a.recv_until(lambda f: f.get("msg_type") == 4)
    assert (enter["username"], enter["message"]) == ("bob", "joined the room")
    assert "seq" not in enter
    await b.close()
    leave = await a.recv_until(lambda f: f.get("msg_type") == 5)
    assert leave["username"] == "bob"


async def test_enter_and_leave_notices_are_off_when_the_setting_is_off(
    settings, connect, alice, bob, room
):
    """NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS=False sends no enter/leave events."""
    settings.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS = False
    settings.CHAT_PRESENCE_GRACE_SECONDS = 0  # a leave would be sent at once
    a = await connect(alice)
    await a.join(room.pk)
    b = await connect(bob)
    await b.join(room.pk)
    await b.close()
    seen = []  # presence frames still come: they are not notices
    while not await a.comm.receive_nothing(timeout=0.3):
        seen.append(await a.raw())
    assert [f for f in seen if "presence" not in f] == []


async def test_non_staff_cannot_post_warnings_or_alerts(connect, alice, room):
    """msg_type 1 and 2 are for staff; others get ROOM_ACCESS_DENIED and nothing is stored."""
    sock = await connect(alice)
    await sock.join(room.pk)
    for msg_type in (1, 2):
        await sock.send({"command": "send", "room": room.pk, "message": "!", "msg_type": msg_type})
        assert (await sock.recv())["error"] == "ROOM_ACCESS_DENIED"
    assert not await Message.objects.aexists()


async def test_staff_can_post_a_warning_and_an_alert(connect, staff, alice, room):
    """Staff's warnings and alerts reach the room with their type."""
    s = await connect(staff)
    a = await connect(alice)
    await s.join(room.pk)
    await a.join(room.pk)
    await s.send({"command": "send", "room": room.pk, "message": "careful", "msg_type": 1})
    await s.send({"command": "send", "room": room.pk, "message": "fire", "msg_type": 2})
    first = await a.recv_until(lambda f: f.get("msg_type") in (1, 2))
    second = await a.recv_until(lambda f: f.get("msg_type") in (1, 2))
    assert [(first["msg_type"], first["message"]), (second["msg_type"], second["message"])] == [
        (1, "careful"),
        (2, "fire"),
    ]


@pytest.mark.parametrize("msg_type", [4, 5, 6, -1])
async def test_send_of_a_notice_or_unknown_type_is_a_bad_request(connect, staff, room, msg_type):
    """Enter/leave notices come from the server; unknown types are refused."""
    sock = await connect(staff)
    await sock.join(room.pk)
    await sock.send({"command": "send", "room": room.pk, "message": "x", "msg_type": msg_type})
    assert (await sock.recv())["error"] == "BAD_REQUEST"


async def test_message_over_the_limit_is_too_long(settings, connect, alice, room):
    """A message longer than CHAT_MESSAGE_MAX_LENGTH gets MESSAGE_TOO_LONG and is not stored."""
    settings.CHAT_MESSAGE_MAX_LENGTH = 10
    sock = await connect(alice)
    await sock.join(room.pk)
    await sock.send({"command": "send", "room": room.pk, "message": "x" * 11, "ref": 1})
    reply = await sock.recv()
    assert (reply["error"], reply["ref"]) == ("MESSAGE_TOO_LONG", 1)
    await sock.send({"command": "send", "room": room.pk, "message": "x" * 10})
    assert (await sock.recv_until(lambda f: f.get("msg_type") == 0))["seq"] == 1


async def test_empty_message_is_a_bad_request(connect, alice, room):
    """Blank messages are refused."""
    sock = await connect(alice)
    await sock.join(room.pk)
    await sock.send({"command": "send", "room": room.pk, "message": "  \n "})
    assert (await sock.recv())["error"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("text", "code"),
    [("nul\u0000inside", "BAD_REQUEST"), ("\U0001f600 emoji \u202e rtl \ufeff", None)],
)
async def test_unicode_edge_cases_are_stored_or_refused_cleanly(connect, alice, room, text, code):
    """A NUL character is refused; astral characters and bidi marks are stored as sent."""
    sock = await connect(alice)
    await sock.join(room.pk)
    await sock.send({"command": "send", "room": room.pk, "message": text, "ref": 1})
    reply = await sock.recv()
    if code:
        assert reply["error"] == code
    else:
        assert reply == {"sent": room.pk, "seq": 1, "ref": 1}
        assert (await sock.recv())["message"] == text


async def test_frame_over_the_size_limit_closes_with_1009(settings, connect, alice, bob, room):
    """An oversized frame closes that socket with 1009; others are unaffected."""
    settings.CHAT_MAX_FRAME_BYTES = 2048
    a = await connect(alice)
    b = await connect(bob)
    await b.join(room.pk)
    await a.comm.send_to(text_data='{"command":"send","message":"' + "y" * 4000 + '"}')
    assert await a.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 1009}
    await b.send({"command": "send", "room": room.pk, "message": "fine"})
    assert (await b.recv_until(lambda f: f.get("msg_type") == 0))["message"] == "fine"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "BAD_REQUEST"),
        ("[1, 2]", "BAD_REQUEST"),
        ('"join"', "BAD_REQUEST"),
        ("{}", "BAD_REQUEST"),
        ('{"command": 5}', "BAD_REQUEST"),
        ('{"command": "dance"}', "UNKNOWN_COMMAND"),
        ('{"command": "join"}', "BAD_REQUEST"),
        ('{"command": "join", "room": 1, "colour": "red"}', "BAD_REQUEST"),
        ('{"command": "send", "room": 1, "message": 5}', "BAD_REQUEST"),
        ('{"command": "join", "room": 1, "since": "soon"}', "BAD_REQUEST"),
        ('{"command": "history", "room": 1, "limit": 0}', "BAD_REQUEST"),
        ('{"command": "history", "room": 1, "limit": 101}', "BAD_REQUEST"),
        ('{"command": "join", "room": 1, "ref": {"a": 1}}', "BAD_REQUEST"),
        ('{"command": "join", "room": 1e999}', "BAD_REQUEST"),
    ],
)
async def test_malformed_frames_get_an_error_and_the_socket_keeps_working(
    connect, alice, room, raw, code
):
    """Every malformed frame is answered with its error code; the socket stays usable."""
    sock = await connect(alice)
    await sock.comm.send_to(text_data=raw)
    assert (await sock.recv())["error"] == code
    assert (await sock.join(room.pk))["join"] == room.pk


async def test_error_echoes_the_ref_of_a_bad_frame(connect, alice):
    """Even a frame that fails validation echoes a valid ref."""
    sock = await connect(alice)
    await sock.send({"command": "dance", "ref": "abc"})
    assert await sock.recv() == {
        "error": "UNKNOWN_COMMAND",
        "detail": (
            "Unknown command 'dance'; "
            "use one of join, leave, send, history, read, edit, delete, react, "
            "typing, presence, ping, search."
        ),
        "ref": "abc",
    }


async def test_binary_frame_is_a_bad_request(connect, alice, room):
    """Binary frames are refused with BAD_REQUEST; the socket keeps working."""
    sock = await connect(alice)
    await sock.comm.send_to(bytes_data=b"\x00\x01")
    assert (await sock.recv())["error"] == "BAD_REQUEST"
    assert (await sock.join(room.pk))["join"] == room.pk


async def test_tutorial_client_frames_still_work(connect, alice, room):
    """The original tutorial's frames (no ref, no msg_type) work unchanged."""
    sock = await connect(alice)
    await sock.send({"command": "join", "room": room.pk})
    assert (await sock.recv())["join"] == room.pk
    await sock.send({"command": "send", "room": room.pk, "message": "tutorial"})
    frame = await sock.recv_until(lambda f: f.get("msg_type") == 0)
    assert {"msg_type", "room", "username", "message"} <= frame.keys()
    await sock.send({"command": "leave", "room": room.pk})
    assert await sock.recv_until(lambda f: "leave" in f) == {"leave": room.pk}
