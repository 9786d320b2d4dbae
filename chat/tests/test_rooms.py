"""Rooms made by users (create, rename, leave, rejoin) and the live room list (issue 15)."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from chat import rooms, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Room, RoomLeft
from chat.tests.test_awareness import cluster  # noqa: F401 (a fixture: two server processes)
from multichat_client import RestClient
from testkit.factories import bearer
from testkit.live import next_frame, open_ws

pytestmark = pytest.mark.django_db(transaction=True)


def code_of(call, **kwargs) -> ErrorCode:
    """The error code ``call(**kwargs)`` raises."""
    with pytest.raises(ChatError) as refused:
        call(**kwargs)
    return refused.value.code


# --- services -------------------------------------------------------------------


def test_a_user_creates_a_room_and_only_they_or_staff_may_rename_it(alice, bob, staff):
    """room_create records the creator; a rename by someone else is ROOM_ACCESS_DENIED."""
    room = rooms.room_create(user=alice, title="  Book club  ")
    assert (room.title, room.staff_only, room.created_by_id) == ("Book club", False, alice.pk)
    assert rooms.room_rename(user=alice, room_id=room.pk, title="Readers").title == "Readers"
    denied = code_of(rooms.room_rename, user=bob, room_id=room.pk, title="Mine now")
    assert denied == ErrorCode.ROOM_ACCESS_DENIED
    assert rooms.room_rename(user=staff, room_id=room.pk, title="Library").title == "Library"
    assert Room.objects.get(pk=room.pk).title == "Library"


def test_rooms_made_in_the_admin_are_renamed_by_staff_only(alice, staff, room):
    """A room without a creator: staff may rename it, a user may not."""
    code = code_of(rooms.room_rename, user=alice, room_id=room.pk, title="Lobby")
    assert code == ErrorCode.ROOM_ACCESS_DENIED
    assert rooms.room_rename(user=staff, room_id=room.pk, title="Lobby").title == "Lobby"


def test_users_create_rooms_only_when_the_setting_allows(alice, staff, settings):
    """CHAT_USERS_CREATE_ROOMS off: users are refused, staff still create rooms."""
    settings.CHAT_USERS_CREATE_ROOMS = False
    assert code_of(rooms.room_create, user=alice, title="Mine") == ErrorCode.ROOM_ACCESS_DENIED
    assert rooms.room_create(user=staff, title="Staff made").created_by_id == staff.pk
    assert not Room.objects.filter(title="Mine").exists()


def test_only_staff_create_staff_only_rooms(alice, staff):
    """A user asking for a staff-only room is refused; staff get one."""
    code = code_of(rooms.room_create, user=alice, title="Secret", staff_only=True)
    assert code == ErrorCode.ROOM_ACCESS_DENIED
    assert rooms.room_create(user=staff, title="Secret", staff_only=True).staff_only


@pytest.mark.parametrize(
    "title", ["", "   ", "a\x00b", "tab\there", "bell\x07", "c1\x85", "x" * 81]
)
def test_bad_titles_are_bad_request_and_store_nothing(alice, title):
    """Blank, control characters, or over CHAT_ROOM_TITLE_MAX_LENGTH (80): BAD_REQUEST."""
    assert code_of(rooms.room_create, user=alice, title=title) == ErrorCode.BAD_REQUEST
    assert not Room.objects.exists()


def test_creating_and_renaming_rooms_share_one_rate_limit(alice, settings):
    """After the burst, a create or a rename is RATE_LIMITED with retry_after."""
    settings.CHAT_ROOM_CREATE_RATE = 0.01
    settings.CHAT_ROOM_CREATE_BURST = 2
    room = rooms.room_create(user=alice, title="One")
    rooms.room_rename(user=alice, room_id=room.pk, title="Two")
    with pytest.raises(ChatError) as refused:
        rooms.room_create(user=alice, title="Three")
    assert refused.value.code == ErrorCode.RATE_LIMITED
    assert refused.value.retry_after and refused.value.retry_after > 1
    assert code_of(rooms.room_rename, user=alice, room_id=room.pk, title="Four") == (
        ErrorCode.RATE_LIMITED
    )
    assert list(Room.objects.values_list("title", flat=True)) == ["Two"]


def test_leaving_drops_a_room_from_the_list_until_rejoined(alice, bob, room):
    """room_depart hides the room from alice's list (not bob's); room_return puts it back."""
    rooms.room_depart(user=alice, room_id=room.pk)
    rooms.room_depart(user=alice, room_id=room.pk)  # again: nothing changes
    assert RoomLeft.objects.filter(user=alice).count() == 1
    assert selectors.room_list_with_unread(user=alice) == []
    everything = selectors.room_list_with_unread(user=alice, include_left=True)
    assert [(e.room.pk, e.left) for e in everything] == [(room.pk, True)]
    assert [e.room.pk for e in selectors.room_list_with_unread(user=bob)] == [room.pk]
    rooms.room_return(user=alice, room_id=room.pk)
    assert [e.left for e in selectors.room_list_with_unread(user=alice)] == [False]


def test_leave_and_rejoin_are_refused_like_a_join(alice, staff_room):
    """A staff-only room: ROOM_ACCESS_DENIED; no such room: ROOM_INVALID; nothing stored."""
    denied = code_of(rooms.room_depart, user=alice, room_id=staff_room.pk)
    assert denied == ErrorCode.ROOM_ACCESS_DENIED
    assert code_of(rooms.room_return, user=alice, room_id=999) == ErrorCode.ROOM_INVALID
    assert not RoomLeft.objects.exists()


# --- REST -------------------------------------------------------------------------


def call(client: Client, method: str, path: str, body: object = None):
    """A JSON request to the API."""
    data = None if body is None else json.dumps(body)
    return getattr(client, method)(path, data, content_type="application/json")


def test_rest_creates_renames_leaves_and_rejoins(alice, bob, room):
    """POST /api/rooms, PATCH /api/rooms/{id}, POST .../leave and .../join, GET ?all=1."""
    client = bearer(alice)
    made = call(client, "post", "/api/rooms", {"title": "Plants"})
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["title"], body["created_by"], body["left"], body["last_seq"]) == (
        "Plants",
        "alice",
        False,
        0,
    )
    renamed = call(client, "patch", f"/api/rooms/{body['id']}", {"title": "Ferns"})
    assert (renamed.status_code, renamed.json()["title"]) == (200, "Ferns")
    refused = call(bearer(bob), "patch", f"/api/rooms/{body['id']}", {"title": "Bob's"})
    assert (refused.status_code, refused.json()["error"]) == (403, "ROOM_ACCESS_DENIED")

    left = call(client, "post", f"/api/rooms/{room.pk}/leave")
    assert (left.status_code, left.json()) == (200, {"room_left": room.pk})
    listed = client.get("/api/rooms").json()["rooms"]
    assert [r["title"] for r in listed] == ["Ferns"]
    everything = client.get("/api/rooms?all=1").json()["rooms"]
    assert [(r["title"], r["left"]) for r in everything] == [("Ferns", False), ("General", True)]

    back = call(client, "post", f"/api/rooms/{room.pk}/join")
    assert back.status_code == 200
    assert back.json() == {
        "room_rejoined": room.pk,
        "title": "General",
        "staff_only": False,
        "created_by": None,
        "kind": "room",
    }
    assert len(client.get("/api/rooms").json()["rooms"]) == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"title": ""}, 400, "BAD_REQUEST"),
        ({"title": "x" * 81}, 400, "BAD_REQUEST"),
        ({"title": "ok", "extra": 1}, 422, "BAD_REQUEST"),
        ({"title": 5}, 422, "BAD_REQUEST"),
        ({"title": "Secret", "staff_only": True}, 403, "ROOM_ACCESS_DENIED"),
    ],
)
def test_rest_create_refusals_are_in_the_error_shape(alice, body, status, code):
    """A bad body, a bad title or a forbidden staff-only room: the socket's error codes."""
    response = call(bearer(alice), "post", "/api/rooms", body)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert not Room.objects.exists()


def test_creating_rooms_too_fast_is_429_with_retry_after(alice, settings):
    """Past CHAT_ROOM_CREATE_BURST: 429 RATE_LIMITED with a Retry-After header."""
    settings.CHAT_ROOM_CREATE_RATE = 0.01
    settings.CHAT_ROOM_CREATE_BURST = 1
    client = bearer(alice)
    assert call(client, "post", "/api/rooms", {"title": "One"}).status_code == 201
    refused = call(client, "post", "/api/rooms", {"title": "Two"})
    assert (refused.status_code, refused.json()["error"]) == (429, "RATE_LIMITED")
    assert int(refused["Retry-After"]) >= 1


def test_the_session_needs_csrf_to_create_a_room(alice):
    """From the page (session cookie): the CSRF check applies, as for posts."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = call(client, "post", "/api/rooms", {"title": "No token"})
    assert response.status_code == 403
    assert not Room.objects.exists()


# --- the live room list on the socket ------------------------------------------------

ROOM_FRAMES = ("room_listed", "room_removed", "room_left", "room_rejoined")


async def ready(sock) -> None:
    """Wait until the socket's connect finished (its room-list feed included): one round trip."""
    await sock.send({"command": "leave", "room": 0, "ref": "ready"})
    await sock.recv_until(lambda f: f.get("ref") == "ready")


def room_frame(frame: dict) -> bool:
    return any(key in frame for key in ROOM_FRAMES)


async def room_frames(sock, quiet: float = 0.3) -> list[dict]:
    """The room-list frames the socket gets until it stays quiet."""
    return [f for f in await sock.until_quiet(quiet) if room_frame(f)]


async def test_a_created_room_reaches_everyone_who_may_enter_it(connect, alice, bob, staff):
    """bob creates a room: alice and stella are told; a staff-only room reaches only staff."""
    alice_sock, staff_sock = await connect(alice), await connect(staff)
    await ready(alice_sock)
    await ready(staff_sock)
    made = await database_sync_to_async(rooms.room_create)(user=bob, title="Bob's room")
    expected = {"room_listed": made.pk, "title": "Bob's room", "staff_only": False, "kind": "room"}
    for sock in (alice_sock, staff_sock):
        frame = await sock.recv_until(room_frame)
        assert frame == {**expected, "created_by": "bob"}
    hidden = await database_sync_to_async(rooms.room_create)(
        user=staff, title="Secret plans", staff_only=True
    )
    frame = await staff_sock.recv_until(room_frame)
    assert (frame["room_listed"], frame["title"]) == (hidden.pk, "Secret plans")
    assert await room_frames(alice_sock) == []


async def test_a_room_made_staff_only_is_removed_without_its_new_title(connect, alice, staff, room):
    """Renamed and made staff-only at once: alice gets room_removed only, never the title."""
    alice_sock, staff_sock = await connect(alice), await connect(staff)
    await ready(alice_sock)
    await ready(staff_sock)
    await alice_sock.join(room.pk)

    def hide():
        room.title = "Quiet council"
        room.staff_only = True
        services.room_save(room=room)

    await database_sync_to_async(hide)()
    seen = await alice_sock.until_quiet(0.5)
    assert {"room_removed": room.pk} in seen
    assert "Quiet council" not in json.dumps(seen)
    assert [f["error"] for f in seen if "error" in f] == ["ROOM_ACCESS_DENIED"]  # expelled
    frame = await staff_sock.recv_until(room_frame)
    assert frame == {
        "room_listed": room.pk,
        "title": "Quiet council",
        "staff_only": True,
        "created_by": None,
        "kind": "room",
    }


async def test_a_staff_only_rooms_rename_never_reaches_others(connect, alice, staff, staff_room):
    """A staff-only room renamed: staff see the title; alice gets at most its removal."""
    alice_sock = await connect(alice)
    await ready(alice_sock)
    await database_sync_to_async(rooms.room_rename)(
        user=staff, room_id=staff_room.pk, title="Renamed secret"
    )
    frames = await room_frames(alice_sock)
    assert frames == [{"room_removed": staff_room.pk}]
    assert "Renamed secret" not in json.dumps(frames)


async def test_any_save_or_delete_reaches_the_list_orm_and_admin_too(connect, alice, staff):
    """Room.objects.create (a command, the shell), the admin's change form and delete."""
    sock = await connect(alice)
    await ready(sock)
    made = await Room.objects.acreate(title="From a command")
    frame = await sock.recv_until(room_frame)
    assert (frame["room_listed"], frame["title"]) == (made.pk, "From a command")

    def admin(path: str, data: dict) -> int:
        client = Client()
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-r-1"))
        return client.post(path, data).status_code

    change = f"/admin/chat/room/{made.pk}/change/"
    status = await database_sync_to_async(admin)(change, {"title": "Admin's", "staff_only": ""})
    assert status == 302
    frame = await sock.recv_until(room_frame)
    assert (frame["room_listed"], frame["title"]) == (made.pk, "Admin's")
    await database_sync_to_async(lambda: Room.objects.get(pk=made.pk).delete())()
    assert await sock.recv_until(room_frame) == {"room_removed": made.pk}


async def test_a_deleted_staff_room_is_never_mentioned_to_others(connect, alice, staff_room):
    """Deleting a staff-only room tells nobody who could not see it."""
    sock = await connect(alice)
    await ready(sock)
    await database_sync_to_async(services.room_delete)(room=staff_room)
    assert await room_frames(sock) == []


async def test_leave_and_rejoin_reach_every_socket_of_the_user_only(connect, alice, bob, room):
    """alice leaves on her phone: her laptop hears room_left, bob nothing; rejoin likewise."""
    phone, laptop, other = await connect(alice), await connect(alice), await connect(bob)
    for sock in (phone, laptop, other):
        await ready(sock)
    await database_sync_to_async(rooms.room_depart)(user=alice, room_id=room.pk)
    for sock in (phone, laptop):
        assert await sock.recv_until(room_frame) == {"room_left": room.pk}
    await database_sync_to_async(rooms.room_return)(user=alice, room_id=room.pk)
    rejoined = {"room_rejoined": room.pk, "title": "General", "staff_only": False}
    for sock in (phone, laptop):
        assert await sock.recv_until(room_frame) == {**rejoined, "created_by": None, "kind": "room"}
    assert await room_frames(other) == []


async def test_frames_match_the_protocol_structs(connect, alice, staff, room):
    """Every room-list frame decodes into its chat.protocol Struct (no unknown field)."""
    import msgspec

    from chat import protocol

    sock = await connect(alice)
    await ready(sock)

    def changes():
        made = rooms.room_create(user=alice, title="Typed")
        rooms.room_depart(user=alice, room_id=room.pk)
        rooms.room_return(user=alice, room_id=room.pk)
        services.room_delete(room=made)

    await database_sync_to_async(changes)()
    structs = {
        "room_listed": protocol.RoomListedEvent,
        "room_left": protocol.RoomLeftEvent,
        "room_rejoined": protocol.RoomRejoinedEvent,
        "room_removed": protocol.RoomRemovedEvent,
    }
    seen = set()
    for _ in range(4):
        frame = await sock.recv_until(room_frame)
        (key,) = [k for k in structs if k in frame]

        class Strict(structs[key], forbid_unknown_fields=True):
            pass

        msgspec.convert(frame, Strict)
        seen.add(key)
    assert seen == set(structs)


# --- two processes and a management command on one Redis and one PostgreSQL ----------


async def ws_ready(ws) -> None:
    """Wait until a live socket's connect finished (its room-list feed included)."""
    await ws.send(json.dumps({"command": "leave", "room": 0, "ref": "ready"}))
    await next_frame(ws, lambda f: f.get("ref") == "ready")


@pytest.mark.redis
@pytest.mark.postgres
async def test_rooms_made_anywhere_reach_sockets_on_every_process(cluster):  # noqa: F811
    """A room from `manage.py` (a third process) and one from REST on B reach alice on A."""
    a, b = cluster
    alice, bob = await open_ws(a, "alice"), await open_ws(b, "bob")
    for ws in (alice, bob):
        await ws_ready(ws)
    made = await asyncio.to_thread(a.testkit, "room", title="From a command")
    for ws in (alice, bob):
        frame = await next_frame(ws, lambda f: "room_listed" in f)
        assert (frame["room_listed"], frame["title"]) == (made, "From a command")
    token = await asyncio.to_thread(a.create_token, "bob")
    rest = RestClient(b.url, token)
    created = await asyncio.to_thread(rest.create_room, "Bob's corner")
    frame = await next_frame(alice, lambda f: "room_listed" in f)
    assert frame == {
        "room_listed": created["id"],
        "title": "Bob's corner",
        "staff_only": False,
        "created_by": "bob",
        "kind": "room",
    }
    for ws in (alice, bob):
        await ws.close()
