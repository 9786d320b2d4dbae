"""One rule for who may enter a room: every path that applies it gives the same answer.

The rule lives in chat.permissions (``can_enter`` and ``enterable_rooms``);
this matrix of users and rooms asks each path that decides access (the
predicate, the room list, the join and history check, the post's seq UPDATE,
the access re-check of open sockets and a room change notice) and checks
that all of them answer as the table below says.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from chat import access, events, permissions, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Room

pytestmark = pytest.mark.django_db(transaction=True)

USERS = {
    "anonymous": None,
    "inactive": {"is_active": False},
    "active": {},
    "staff": {"is_staff": True},
    "inactive staff": {"is_staff": True, "is_active": False},
}
ROOMS = {"open": False, "staff-only": True}
# Who may enter which room: nobody else, by any path.
MAY_ENTER = {("active", "open"), ("staff", "open"), ("staff", "staff-only")}


def make(user_kind: str, room_kind: str):
    """The user (AnonymousUser for "anonymous") and the room of one cell of the matrix."""
    room = Room.objects.create(title=room_kind, staff_only=ROOMS[room_kind])
    fields = USERS[user_kind]
    if fields is None:
        return AnonymousUser(), room
    user = get_user_model().objects.create_user(username="u", password="pw-for-tests", **fields)
    return user, room


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
    }


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
    expected = (user_kind, room_kind) in MAY_ENTER
    assert answers == dict.fromkeys(answers, expected)


def test_the_post_statement_takes_its_condition_from_the_rule(make_user, alice, staff):
    """The seq UPDATE of a post is compiled from enterable_rooms, not written beside it."""
    sql, _ = services._take_seq_sql(1, alice)
    assert "staff_only" in sql  # an account that is not staff: open rooms only
    for everywhere in (staff, None):  # staff, and the system, post to any room
        sql, params = services._take_seq_sql(1, everywhere)
        assert "staff_only" not in sql and params == [1]
    inactive = make_user("gone")
    inactive.is_active = False
    assert services._take_seq_sql(1, inactive) is None  # no room at all: no statement


def test_users_of_one_access_class_may_enter_the_same_rooms(make_user):
    """permissions.access_class keeps its promise: equal classes, equal answers, every room.

    The activity feed decides per class, not per user; a rule that starts to
    read more of the user without adding it to the class fails here.
    """
    users: list = [AnonymousUser()]
    for i, fields in enumerate(f for f in USERS.values() if f is not None):
        for copy in range(2):
            user = make_user(f"class{i}-{copy}")
            for name, value in fields.items():
                setattr(user, name, value)
            users.append(user)
    rooms = [permissions.RoomAccess(staff_only=flag) for flag in ROOMS.values()]
    answers: dict[tuple[bool, bool], list[bool]] = {}
    for user in users:
        seen = [permissions.can_enter(user, room) for room in rooms]
        assert answers.setdefault(permissions.access_class(user), seen) == seen, user
    assert len(answers) == 3  # nobody; open rooms; every room
