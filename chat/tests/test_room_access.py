"""One rule for who may enter a room: every path that applies it gives the same answer.

The rule lives in chat.permissions (``can_enter`` and ``enterable_rooms``);
this matrix of users and rooms asks each path that decides access (the
predicate, the room list, the join and history check, the post's seq UPDATE,
mentions, the access re-check of open sockets, a room change notice, the
live room list and the activity feed) and checks that all of them answer as
the table below says. A direct conversation is either the user's own (they
are a member) or someone else's; staff get no access to it by being staff.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from chat import access, activity, events, permissions, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Mention, Room, RoomKind, RoomMember

pytestmark = pytest.mark.django_db(transaction=True)

USERS = {
    "anonymous": None,
    "inactive": {"is_active": False},
    "active": {},
    "staff": {"is_staff": True},
    "inactive staff": {"is_staff": True, "is_active": False},
}
ROOMS = {"open": False, "staff-only": True, "own direct": False, "other's direct": False}
# Who may enter which room: nobody else, by any path.
MAY_ENTER = {
    ("active", "open"),
    ("staff", "open"),
    ("staff", "staff-only"),
    ("active", "own direct"),
    ("staff", "own direct"),
}


def make(user_kind: str, room_kind: str):
    """The user (AnonymousUser for "anonymous") and the room of one cell of the matrix."""
    direct = room_kind.endswith("direct")
    room = Room.objects.create(
        title=room_kind,
        staff_only=ROOMS[room_kind],
        kind=RoomKind.DIRECT if direct else RoomKind.ROOM,
        direct_key=room_kind if direct else None,
    )
    if direct:
        other = get_user_model().objects.create_user(username="other", password="pw-for-tests")
        RoomMember.objects.create(room=room, user=other)
    fields = USERS[user_kind]
    if fields is None:
        return AnonymousUser(), room
    user = get_user_model().objects.create_user(username="u", password="pw-for-tests", **fields)
    if room_kind == "own direct":
        RoomMember.objects.create(room=room, user=user)
    return user, room


def mentioned(user, room: Room) -> bool:
    """True if the system's ``@u`` in ``room`` mentions ``user`` (a stored Mention row)."""
    services.room_post(room_id=room.pk, user=None, text="hello @u")
    return user.is_authenticated and Mention.objects.filter(user_id=user.pk).exists()


def post(user, room: Room) -> bool:
    """True if ``user``'s post to ``room`` is stored (PostgreSQL: the one-statement insert)."""
    try:
        services.room_post(room_id=room.pk, user=user, text="hello")
    except ChatError as exc:
        assert exc.code == ErrorCode.ROOM_ACCESS_DENIED
        room.refresh_from_db()
        assert room.last_seq == 0  # a refused post takes no seq
        return False
    return True


def joinable(user, room: Room) -> bool:
    """True if ``user`` may join ``room`` or read its history (the selector both use)."""
    try:
        selectors.room_for_user(user=user, room_id=room.pk)
    except ChatError as exc:
        assert exc.code == ErrorCode.ROOM_ACCESS_DENIED
        return False
    return True


def keeps_room_on_recheck(user, room: Room) -> bool:
    """True if a socket of ``user`` in ``room`` keeps it when its access is re-read."""
    credentials = access.Credentials(user_id=user.pk, session=None, session_hash=None)
    snapshot = access.read([credentials], [room.pk])
    if access.refusal(snapshot, credentials) is not None:
        return False  # the socket is closed
    return permissions.can_enter(snapshot.users[user.pk], snapshot.rooms[room.pk])


def verdicts(user, room: Room) -> dict[str, bool]:
    """Each synchronous path's answer to "may ``user`` enter ``room``?"."""
    return {
        "can_enter(room)": permissions.can_enter(user, room),
        "can_enter(RoomAccess)": permissions.can_enter(user, permissions.RoomAccess.of(room)),
        "enterable_rooms": Room.objects.filter(permissions.enterable_rooms(user)).exists(),
        "room list": room in selectors.room_list_for_user(user=user),
        "join and history": joinable(user, room),
        "post": post(user, room),
        "access re-check": keeps_room_on_recheck(user, room),
        "mention": mentioned(user, room),
    }


class Watcher:
    """A socket as the activity tracker sees it: its user, and the frames pushed to it."""

    backed_up = False

    def __init__(self, user) -> None:
        self.user = user
        self.frames: list[str] = []

    def push(self, event) -> None:
        self.frames.append(event["frame"]["text"])


async def listed_live(user, room: Room) -> bool:
    """True if a socket of ``user`` is sent the room's ``room_listed`` when it changes."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.ACTIVITY_GROUP, channel)
    await database_sync_to_async(room.save)()  # chat.signals: the live room list
    async with asyncio.timeout(3):
        event = await layer.receive(channel)
    assert event["type"] == events.ROOM_LISTING_TYPE
    tracker = activity.Tracker(None)  # type: ignore[arg-type]  # _listing needs no hub
    socket = Watcher(user)
    tracker.sockets.add(socket)
    tracker._listing(event)
    return any('"room_listed"' in frame for frame in socket.frames)


async def in_activity_feed(user, room: Room) -> bool:
    """True if the activity tick tells a socket of ``user`` that the room moved."""
    tracker = activity.Tracker(None)  # type: ignore[arg-type]  # the tick's frames need no hub
    socket = Watcher(user)
    tracker.sockets.add(socket)
    await tracker._send({room.pk}, set(), {})
    return any(f'"room":{room.pk},' in frame for frame in socket.frames)


async def stays_after_room_change(user, room: Room) -> bool:
    """True if a socket of ``user`` in ``room`` stays when the room's change notice arrives."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.room_group(room.pk), channel)
    await database_sync_to_async(services.room_save)(room=room)
    async with asyncio.timeout(3):
        event = await layer.receive(channel)
    assert (event["type"], event["deleted"]) == (events.ROOM_ACCESS_TYPE, False)
    return permissions.can_enter(user, permissions.RoomAccess(**event["access"]))


@pytest.mark.parametrize("room_kind", ROOMS)
@pytest.mark.parametrize("user_kind", USERS)
async def test_every_path_agrees_on_who_may_enter_a_room(user_kind, room_kind):
    user, room = await database_sync_to_async(make)(user_kind, room_kind)
    answers = await database_sync_to_async(verdicts)(user, room)
    answers["room change notice"] = await stays_after_room_change(user, room)
    answers["live room list"] = await listed_live(user, room)
    answers["activity feed"] = await in_activity_feed(user, room)
    expected = (user_kind, room_kind) in MAY_ENTER
    assert answers == dict.fromkeys(answers, expected)


def test_the_post_statement_takes_its_condition_from_the_rule(make_user, alice, staff):
    """The seq UPDATE of a post is compiled from enterable_rooms, not written beside it."""
    sql, params = services._take_seq_sql(1, alice)
    assert "staff_only" in sql  # an account that is not staff: open rooms only
    assert "roommember" in sql and params[-1] == alice.pk  # and its own conversations
    sql, params = services._take_seq_sql(1, staff)
    assert "staff_only" not in sql and "roommember" in sql  # staff: every room, own conversations
    assert params[-1] == staff.pk
    sql, params = services._take_seq_sql(1, None)  # the system posts anywhere
    assert "WHERE id = %s RETURNING" in sql and params == [1]
    inactive = make_user("gone")
    inactive.is_active = False
    assert services._take_seq_sql(1, inactive) is None  # no room at all: no statement


def test_the_compiled_rule_is_cached_per_class_not_per_user(make_user):
    """A thousand posters share one compiled shape per class; each binds only its own id."""
    services._room_filter_sql.cache_clear()
    users = [make_user(f"poster{i}") for i in range(20)]
    statements = {services._take_seq_sql(1, u)[0] for u in users}  # type: ignore[index]
    assert len(statements) == 1
    info = services._room_filter_sql.cache_info()
    assert (info.misses, info.currsize) == (1, 1)
    bound = [services._take_seq_sql(1, u)[1] for u in users]  # type: ignore[index]
    assert [params[-1] for params in bound] == [u.pk for u in users]


def test_a_conversation_is_listed_once_whoever_else_is_in_it(make_user):
    """The membership subquery adds no duplicate rows to a room list (no join)."""
    ann, ben, cat = make_user("ann"), make_user("ben"), make_user("cat")
    room = Room.objects.create(title="x", kind=RoomKind.DIRECT, direct_key="x")
    for u in (ann, ben, cat):
        RoomMember.objects.create(room=room, user=u)
    assert list(selectors.room_list_for_user(user=ann)) == [room]


def test_users_of_one_access_class_may_enter_the_same_rooms(make_user):
    """permissions.access_class keeps its promise: equal classes, equal answers, every room.

    The activity feed decides per class, not per user, for the rooms the class
    decides (permissions.class_decides); a rule that starts to read more of the
    user without adding it to the class fails here. Direct conversations are
    decided per user, and the class never decides them.
    """
    users: list = [AnonymousUser()]
    for i, fields in enumerate(f for f in USERS.values() if f is not None):
        for copy in range(2):
            user = make_user(f"class{i}-{copy}")
            for name, value in fields.items():
                setattr(user, name, value)
            users.append(user)
    rooms = [permissions.RoomAccess(staff_only=flag) for flag in (False, True)]
    assert all(permissions.class_decides(room) for room in rooms)
    answers: dict[tuple[bool, bool], list[bool]] = {}
    for user in users:
        seen = [permissions.can_enter(user, room) for room in rooms]
        assert answers.setdefault(permissions.access_class(user), seen) == seen, user
    assert len(answers) == 3  # nobody; open rooms; every room
    pair = users[5:7]  # two staff of one class: only the member enters their conversation
    direct = permissions.RoomAccess(
        staff_only=False, kind=RoomKind.DIRECT, members=frozenset({pair[0].pk})
    )
    assert not permissions.class_decides(direct)
    assert permissions.access_class(pair[0]) == permissions.access_class(pair[1])
    assert [permissions.can_enter(u, direct) for u in pair] == [True, False]


def test_room_access_survives_the_channel_layer():
    """A conversation's access goes through an event (msgpack: no sets) and comes back equal."""
    import msgpack

    room = permissions.RoomAccess(staff_only=False, kind="direct", members=frozenset({3, 1}))
    wire = msgpack.unpackb(msgpack.packb(room.as_event()))
    assert permissions.RoomAccess.from_event(wire) == room
