"""Direct conversations (issue 16): anyone opens one; only its members enter it, by any route."""

import asyncio
import json
import threading

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from chat import rooms, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Mention, Room, RoomKind, RoomLeft, RoomMember
from chat.tests.test_awareness import cluster  # noqa: F401 (a fixture: two server processes)
from chat.tests.test_rooms import ready, room_frame
from multichat_client import RestClient
from testkit.factories import bearer
from testkit.live import join, next_frame, open_ws

pytestmark = pytest.mark.django_db(transaction=True)


def code_of(call, **kwargs) -> ErrorCode:
    """The error code ``call(**kwargs)`` raises."""
    with pytest.raises(ChatError) as refused:
        call(**kwargs)
    return refused.value.code


def open_direct(client: Client, users) -> object:
    return client.post("/api/direct", json.dumps({"users": users}), content_type="application/json")


# --- services -----------------------------------------------------------------------


def test_one_set_of_people_has_one_conversation(alice, bob, staff):
    """Whoever opens it and however the names are ordered, the same people find the same room."""
    room, created = rooms.direct_open(user=alice, usernames=["bob", "stella"])
    assert created and room.kind == RoomKind.DIRECT
    assert room.direct_key == ",".join(str(pk) for pk in sorted((alice.pk, bob.pk, staff.pk)))
    assert room.title == "alice, bob, stella"
    again, created = rooms.direct_open(user=staff, usernames=["alice", "bob", "stella"])
    assert (again.pk, created) == (room.pk, False)
    pair, created = rooms.direct_open(user=bob, usernames=["alice"])  # a subset: its own room
    assert created and pair.pk != room.pk
    assert set(RoomMember.objects.filter(room=room).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
        staff.pk,
    }


def test_notes_to_self_are_a_conversation_of_one(alice, bob):
    """Naming nobody else (or only yourself) opens your own notes; nobody else may enter."""
    notes, created = rooms.direct_open(user=alice, usernames=["alice"])
    assert created and notes.title == "alice"
    assert rooms.direct_open(user=alice, usernames=[])[0].pk == notes.pk
    assert code_of(selectors.room_for_user, user=bob, room_id=notes.pk) == (
        ErrorCode.ROOM_ACCESS_DENIED
    )


def test_bad_people_are_refused_and_nothing_is_made(alice, bob, make_user, settings):
    """Unknown or inactive names: USER_INVALID naming them; too many people: BAD_REQUEST."""
    gone = make_user("gone")
    gone.is_active = False
    gone.save()
    with pytest.raises(ChatError) as refused:
        rooms.direct_open(user=alice, usernames=["bob", "ghost", "gone"])
    assert refused.value.code == ErrorCode.USER_INVALID
    assert "'ghost', 'gone'" in refused.value.detail
    settings.CHAT_DIRECT_MAX_MEMBERS = 2
    make_user("cat")
    with pytest.raises(ChatError) as refused:
        rooms.direct_open(user=alice, usernames=["bob", "cat"])
    assert refused.value.code == ErrorCode.BAD_REQUEST
    assert "at most 2 people" in refused.value.detail
    assert not Room.objects.filter(kind=RoomKind.DIRECT).exists()


def test_a_conversation_is_never_renamed(alice, bob, staff):
    """Its name is its members': renaming is refused, even to staff and members."""
    room, _ = rooms.direct_open(user=alice, usernames=["bob"])
    for user in (alice, staff):
        assert code_of(rooms.room_rename, user=user, room_id=room.pk, title="x") in (
            ErrorCode.ROOM_ACCESS_DENIED,
        )


def test_staff_who_are_not_members_get_nothing_but_the_admin(alice, bob, staff, make_user):
    """No join, history, post, list, mention or search route opens a conversation to staff."""
    room, _ = rooms.direct_open(user=alice, usernames=["bob"])
    services.message_send(user=alice, room_id=room.pk, text="hi @stella and @bob")
    for call in (
        lambda: services.room_join(user=staff, room_id=room.pk),
        lambda: services.room_history(user=staff, room_id=room.pk),
        lambda: services.message_send(user=staff, room_id=room.pk, text="let me in"),
    ):
        with pytest.raises(ChatError) as refused:
            call()
        assert refused.value.code == ErrorCode.ROOM_ACCESS_DENIED
        assert "not a member" in refused.value.detail
    assert room not in selectors.room_list_for_user(user=staff)
    mentioned = set(Mention.objects.values_list("user__username", flat=True))
    assert mentioned == {"bob"}  # @stella in a conversation she is not in does nothing
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("su", password="pw-su-1"))
    page = admin.get("/admin/chat/room/?kind__exact=direct")
    assert page.status_code == 200 and "alice, bob" in page.content.decode()
    change = admin.get(f"/admin/chat/room/{room.pk}/change/").content.decode()
    assert 'name="staff_only"' not in change and "alice" in change  # members, read only


def test_closing_a_conversation_hides_it_until_another_member_posts(alice, bob):
    """Leaving a conversation (Slack's close) drops it from the list; bob's post brings it back."""
    room, _ = rooms.direct_open(user=alice, usernames=["bob"])
    rooms.room_depart(user=alice, room_id=room.pk)
    assert room.pk not in {e.room.pk for e in selectors.room_list_with_unread(user=alice)}
    services.message_send(user=alice, room_id=room.pk, text="my own post keeps it closed")
    assert RoomLeft.objects.filter(user=alice, room=room).exists()
    services.message_send(user=bob, room_id=room.pk, text="are you there?")
    listed = {e.room.pk: e for e in selectors.room_list_with_unread(user=alice)}
    assert listed[room.pk].unread == 1 and listed[room.pk].members == ["alice", "bob"]


def test_closing_a_room_is_not_undone_by_a_post(alice, bob, room):
    """Only conversations come back: a room left stays left whoever posts."""
    rooms.room_depart(user=alice, room_id=room.pk)
    services.message_send(user=bob, room_id=room.pk, text="hello")
    assert RoomLeft.objects.filter(user=alice, room=room).exists()


@pytest.mark.postgres
def test_two_openers_racing_get_one_conversation(alice, bob):
    """Both open alice+bob at once: one row is made, both get it (unique direct_key, retried)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's concurrent transactions")
    barrier = threading.Barrier(2)
    found: list[tuple[int, bool]] = []

    def opener(user, other):
        barrier.wait()
        try:
            room, created = rooms.direct_open(user=user, usernames=[other])
            found.append((room.pk, created))
        finally:
            connection.close()

    for _ in range(5):
        Room.objects.filter(kind=RoomKind.DIRECT).delete()
        found.clear()
        threads = [
            threading.Thread(target=opener, args=(alice, "bob")),
            threading.Thread(target=opener, args=(bob, "alice")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len({pk for pk, _ in found}) == 1, found
        assert sorted(created for _, created in found) == [False, True]
        assert Room.objects.filter(kind=RoomKind.DIRECT).count() == 1


# --- REST -----------------------------------------------------------------------------


def test_rest_opens_201_then_200_and_lists_it_with_unread(alice, bob, staff):
    """POST /api/direct: 201 new, 200 existing; it is in both members' lists, not staff's."""
    made = open_direct(bearer(alice), ["bob"])
    assert made.status_code == 201
    entry = made.json()
    assert (entry["kind"], entry["members"], entry["staff_only"]) == (
        "direct",
        ["alice", "bob"],
        False,
    )
    assert open_direct(bearer(bob), ["alice"]).json()["id"] == entry["id"]
    assert open_direct(bearer(bob), ["alice"]).status_code == 200
    services.message_send(user=alice, room_id=entry["id"], text="hi")
    listed = {r["id"]: r for r in bearer(bob).get("/api/rooms").json()["rooms"]}
    assert listed[entry["id"]]["unread"] == 1
    assert entry["id"] not in {
        r["id"] for r in bearer(staff).get("/api/rooms?all=1").json()["rooms"]
    }
    history = bearer(staff).get(f"/api/rooms/{entry['id']}/messages")
    assert (history.status_code, history.json()["error"]) == (403, "ROOM_ACCESS_DENIED")
    posted = bearer(staff).post(
        f"/api/rooms/{entry['id']}/messages", {"message": "x"}, content_type="application/json"
    )
    assert posted.status_code == 403


@pytest.mark.parametrize(
    ("users", "status", "code"),
    [
        (["nobody"], 404, "USER_INVALID"),
        ([], 422, "BAD_REQUEST"),
        ("bob", 422, "BAD_REQUEST"),
        ([""], 422, "BAD_REQUEST"),
    ],
)
def test_rest_refuses_bad_people_clearly(alice, bob, users, status, code):
    """Unknown names, an empty list, a string for a list: the error shape with a code."""
    response = open_direct(bearer(alice), users)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert not Room.objects.filter(kind=RoomKind.DIRECT).exists()


# --- sockets (in process) -----------------------------------------------------------


async def test_a_new_conversation_is_listed_for_its_members_only(connect, alice, bob, staff):
    """room_listed with kind and members reaches alice and bob at once; staff hear nothing."""
    socks = {u.username: await connect(u) for u in (alice, bob, staff)}
    for sock in socks.values():
        await ready(sock)
    room, _ = await database_sync_to_async(rooms.direct_open)(user=alice, usernames=["bob"])
    for name in ("alice", "bob"):
        frame = await socks[name].recv_until(room_frame)
        assert frame == {
            "room_listed": room.pk,
            "title": "alice, bob",
            "staff_only": False,
            "created_by": "alice",
            "kind": "direct",
            "members": ["alice", "bob"],
        }
    reply = await socks["bob"].join(room.pk)
    assert (reply["kind"], reply["members"]) == ("direct", ["alice", "bob"])
    refused = await socks["stella"].join(room.pk)
    assert refused["error"] == "ROOM_ACCESS_DENIED"
    await database_sync_to_async(services.message_send)(user=alice, room_id=room.pk, text="psst")
    mention = await socks["bob"].recv_until(lambda f: "mention" in f)
    assert (mention["mention"], mention["message"]) == (room.pk, "psst")
    quiet = await socks["stella"].until_quiet(1.5)  # an activity tick passes
    assert str(room.pk) not in json.dumps([f for f in quiet if "error" not in f])


# --- two processes on one Redis and one PostgreSQL --------------------------------------


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_conversation_reaches_its_members_on_every_process_and_never_others(
    cluster,  # noqa: F811
):
    """bob on B opens a conversation with alice (on A) by REST and writes: alice's socket lists
    it, gets it live and as a mention; stella (staff, on both) is refused by socket and REST,
    and no frame of hers ever names it."""
    a, b = cluster
    alice = await open_ws(a, "alice")
    stella_a, stella_b = await open_ws(a, "stella"), await open_ws(b, "stella")
    bob = await open_ws(b, "bob")
    for ws in (alice, stella_a, stella_b, bob):
        await ws.send(json.dumps({"command": "leave", "room": 0, "ref": "ready"}))
        await next_frame(ws, lambda f: f.get("ref") == "ready")
    rest = RestClient(b.url, await asyncio.to_thread(b.create_token, "bob"))
    room = await asyncio.to_thread(rest.open_direct, ["alice"])
    listed = await next_frame(alice, lambda f: "room_listed" in f)
    assert (listed["room_listed"], listed["kind"], listed["members"]) == (
        room["id"],
        "direct",
        ["alice", "bob"],
    )
    assert (await join(alice, room["id"]))["join"] == room["id"]
    await asyncio.to_thread(rest.post, room["id"], "only for you @stella")
    message = await next_frame(alice, lambda f: f.get("msg_type") == 0)
    assert message["message"] == "only for you @stella"
    mention = await next_frame(alice, lambda f: "mention" in f)
    assert mention["mention"] == room["id"]
    activity = await next_frame(alice, lambda f: "activity" in f)  # the tick names it for alice
    assert room["id"] in [entry["room"] for entry in activity["activity"]]
    refused = await join(stella_a, room["id"])
    assert refused["error"] == "ROOM_ACCESS_DENIED"
    staff_rest = RestClient(a.url, await asyncio.to_thread(a.create_token, "stella"))
    assert room["id"] not in [r["id"] for r in await asyncio.to_thread(staff_rest.rooms, all=True)]
    with pytest.raises(Exception, match="ROOM_ACCESS_DENIED"):
        await asyncio.to_thread(staff_rest.history, room["id"])
    await asyncio.to_thread(rest.post, room["id"], "second")  # another tick's worth
    await next_frame(alice, lambda f: f.get("message") == "second")
    await next_frame(alice, lambda f: "activity" in f)
    for ws in (stella_a, stella_b):
        seen = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                while True:
                    seen.append(json.loads(await ws.recv()))
        assert not [f for f in seen if str(room["id"]) in json.dumps(f) and "error" not in f], seen
    for ws in (alice, stella_a, stella_b, bob):
        await ws.close()
