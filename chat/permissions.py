"""Who may enter a room, and who may post which message type: each rule written once.

"May enter a room" has two faces, defined side by side so they cannot drift
apart: ``can_enter`` for one room in hand, and ``enterable_rooms``, the same
rule as a filter over the Room table (the room lists, and the WHERE of the
UPDATE that takes a post's seq, compiled from it in chat.services).
``RoomAccess`` is what the rule reads of a room, so a change notice or an
access re-check carries exactly that.

A new kind of room (a direct conversation with a member list, an admin room)
adds its fields to ``RoomAccess`` and its case to both functions; the matrix
in chat/tests/test_room_access.py checks that every path agrees.

Two kinds today. A "room" is open, or staff only (``staff_only``): staff enter
every room. A "direct" conversation admits its members alone: staff get no
access by being staff (the Django admin is not a chat path, and lists it), and
``staff_only`` means nothing there. The member set is read from RoomMember
(``RoomAccess.of`` / ``access_of``); in SQL it is a subquery, never a join, so a
room list has no duplicate and the post's compiled statement has one shape per
access class (the user's id is its only parameter, see ``enterable_rooms_shape``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeAlias

from django.contrib.auth import models as auth_models
from django.db.models import Q
from django.http import HttpRequest
from django.utils.module_loading import import_string

from chat import conf
from chat.models import MsgType, Room, RoomKind, RoomMember

# ``Account`` is the project's user model (AUTH_USER_MODEL is Django's own);
# ``User`` is whoever a request or a socket carries: an account, or nobody.
Account: TypeAlias = auth_models.User
User: TypeAlias = Account | auth_models.AnonymousUser


class AuthenticatedRequest(HttpRequest):
    """The request of a view behind login_required: its user is an account (for annotations)."""

    user: Account


STAFF_TYPES = frozenset({MsgType.WARNING, MsgType.ALERT, MsgType.MUTED})
SOCKET_POSTABLE_TYPES = frozenset({MsgType.MESSAGE}) | STAFF_TYPES


@dataclass(frozen=True, slots=True)
class RoomAccess:
    """The fields of a room that decide who may enter it (and, for a conversation, its members)."""

    staff_only: bool
    kind: str = RoomKind.ROOM
    members: frozenset[int] = frozenset()  # user ids; only a direct conversation has any

    @classmethod
    def of(cls, room: Room) -> RoomAccess:
        """The access fields of ``room`` (a direct conversation: one query for its members)."""
        return access_of([room])[room.pk]

    def as_event(self) -> dict[str, Any]:
        """The fields as a channel-layer event carries them (msgpack has no sets)."""
        return {
            "staff_only": self.staff_only,
            "kind": str(self.kind),
            "members": sorted(self.members),
        }

    @classmethod
    def from_event(cls, fields: Mapping[str, Any]) -> RoomAccess:
        """The access an event carries (``as_event``)."""
        return cls(
            staff_only=bool(fields["staff_only"]),
            kind=str(fields.get("kind", RoomKind.ROOM)),
            members=frozenset(fields.get("members", ())),
        )


# The Room columns the rule reads: load at least these before calling can_enter.
ROOM_ACCESS_FIELDS = ("kind", "staff_only")


def access_of(rooms: Iterable[Room]) -> dict[int, RoomAccess]:
    """Each room's RoomAccess by id: one query for the members of all direct conversations."""
    rooms = list(rooms)
    direct = [r.pk for r in rooms if r.kind == RoomKind.DIRECT]
    members: dict[int, set[int]] = {pk: set() for pk in direct}
    if direct:
        rows = RoomMember.objects.filter(room_id__in=direct).values_list("room_id", "user_id")
        for room_id, user_id in rows:
            members[room_id].add(user_id)
    return {
        r.pk: RoomAccess(
            staff_only=r.staff_only,
            kind=str(r.kind),
            members=frozenset(members.get(r.pk, ())),
        )
        for r in rooms
    }


def is_chat_user(user: User) -> bool:
    """True if ``user`` may use the chat at all: logged in, with an active account."""
    return bool(user.is_authenticated and user.is_active)


def is_manager(user: User) -> bool:
    """True if ``user`` manages the chat: enters staff-only rooms, manages rooms, posts notices.

    ``CHAT_MANAGER_PERMISSION`` decides (chat/conf.py): unset, the user's ``is_staff``
    (the standalone server's rule); a permission name ("app_label.codename"), the host's
    permission model (``user.has_perm``); or a dotted path to a callable ``(user) -> bool``.
    """
    if not is_chat_user(user):
        return False
    rule = conf.CHAT_MANAGER_PERMISSION
    if not rule:
        return bool(user.is_staff)
    decided: bool | None = getattr(user, _DECIDED, None)
    if decided is None:
        check = rule if callable(rule) else _hook(rule)
        decided = bool(check(user)) if check is not None else bool(user.has_perm(rule))
        setattr(user, _DECIDED, decided)
    return decided


# Where a user object keeps the hook's answer: the hook may read the database (has_perm does),
# and the socket asks on the event loop, so ``decide_manager`` asks once per user object, in
# the database thread that read it (the socket's user is re-read at every access re-check).
_DECIDED = "_multichat_is_manager"


def decide_manager(*users: User) -> None:
    """Ask the manager hook now (in a database thread) for each of ``users``; no-op without one."""
    if conf.CHAT_MANAGER_PERMISSION:
        for user in users:
            is_manager(user)


@lru_cache(maxsize=8)
def _hook(rule: str) -> Callable[[Any], Any] | None:
    """The callable ``rule`` names, or None when it names a permission ("app_label.codename")."""
    try:
        found = import_string(rule)
    except ImportError:
        return None
    return found if callable(found) else None


def access_class(user: User) -> tuple[bool, bool]:
    """What of ``user`` the rule reads for rooms: same class, same ("room" kind) rooms.

    Lets a caller decide once per class instead of once per user (the activity
    feed builds one frame per class). A direct conversation also reads the
    user's id (its member set): ``class_decides`` says which rooms the class
    alone decides; the others are decided per user. test_room_access checks it.
    """
    if not is_chat_user(user):
        return False, False  # no room at all, staff or not
    return True, is_manager(user)


def class_decides(room: RoomAccess) -> bool:
    """True if ``access_class`` alone decides who may enter ``room`` (False: its members do)."""
    return room.kind != RoomKind.DIRECT


def can_enter(user: User, room: Room | RoomAccess) -> bool:
    """True if ``user`` may see, enter and post to ``room``."""
    if not is_chat_user(user):
        return False
    if room.kind == RoomKind.DIRECT:
        access = room if isinstance(room, RoomAccess) else RoomAccess.of(room)
        return user.pk in access.members  # staff too: being staff opens no conversation
    return not room.staff_only or is_manager(user)


def enterable_rooms_shape(klass: tuple[bool, bool], user_id: Any) -> Q:
    """``enterable_rooms`` for any user of ``klass`` whose id is ``user_id`` (a value).

    The user's id is the Q's only user-dependent value, so chat.services can
    compile the shape once per class and bind the id as a parameter.
    """
    may_use, staff = klass
    if not may_use:
        return Q(pk__in=[])  # no room at all
    member_of = RoomMember.objects.filter(user_id=user_id).values("room_id")
    rooms = Q(kind=RoomKind.ROOM) if staff else Q(kind=RoomKind.ROOM, staff_only=False)
    return rooms | Q(kind=RoomKind.DIRECT, pk__in=member_of)


def enterable_rooms(user: User) -> Q:
    """``can_enter`` as a filter over Room: the rooms ``user`` may see, enter and post to."""
    return enterable_rooms_shape(access_class(user), user.pk)


def refused_detail(room_id: int, kind: str) -> str:
    """Why ``can_enter`` said no, for an error frame (the rule itself says nothing)."""
    if kind == RoomKind.DIRECT:
        return f"Room {room_id} is a direct conversation you are not a member of."
    return f"Room {room_id} is for staff only."


def can_rename(user: User, room: Room) -> bool:
    """True if ``user`` may rename ``room``: staff, or its creator while they may still enter it.

    A direct conversation is never renamed: its name is its members'.
    """
    if room.kind == RoomKind.DIRECT or not can_enter(user, room):
        return False
    return is_manager(user) or (room.created_by_id is not None and room.created_by_id == user.pk)


def can_create_room(user: User, *, staff_only: bool, users_may_create: bool) -> bool:
    """True if ``user`` may create a room: staff always; others an open one if the site allows."""
    if not is_chat_user(user):
        return False
    if is_manager(user):
        return True
    return users_may_create and not staff_only


def can_post_type(user: User, msg_type: int) -> bool:
    """True if ``user`` may post a message of ``msg_type`` (warnings and alerts: staff only)."""
    if msg_type == MsgType.MESSAGE:
        return True
    return msg_type in STAFF_TYPES and is_manager(user)
