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
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeAlias

from django.contrib.auth import models as auth_models
from django.db.models import Q
from django.http import HttpRequest

from chat.models import MsgType, Room

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
    """The fields of a room that decide who may enter it."""

    staff_only: bool

    @classmethod
    def of(cls, room: Room) -> RoomAccess:
        """The access fields of ``room``."""
        return cls(staff_only=room.staff_only)


# The Room columns the rule reads: load at least these before calling can_enter.
ROOM_ACCESS_FIELDS = tuple(f.name for f in fields(RoomAccess))


def is_chat_user(user: User) -> bool:
    """True if ``user`` may use the chat at all: logged in, with an active account."""
    return bool(user.is_authenticated and user.is_active)


def access_class(user: User) -> tuple[bool, bool]:
    """What of ``user`` the rule reads: two users with the same class may enter the same rooms.

    Lets a caller decide once per class instead of once per user (the activity
    feed builds one frame per class). A rule that comes to read more of the
    user (a member list) adds it here; test_room_access checks the promise.
    """
    if not is_chat_user(user):
        return False, False  # no room at all, staff or not
    return True, bool(user.is_staff)


def can_enter(user: User, room: Room | RoomAccess) -> bool:
    """True if ``user`` may see, enter and post to ``room``."""
    if not is_chat_user(user):
        return False
    return user.is_staff or not room.staff_only


def enterable_rooms(user: User) -> Q:
    """``can_enter`` as a filter over Room: the rooms ``user`` may see, enter and post to."""
    if not is_chat_user(user):
        return Q(pk__in=[])  # no room at all
    if user.is_staff:
        return Q()
    return Q(staff_only=False)


def can_rename(user: User, room: Room) -> bool:
    """True if ``user`` may rename ``room``: staff, or its creator while they may still enter it."""
    if not can_enter(user, room):
        return False
    return bool(user.is_staff) or (room.created_by_id is not None and room.created_by_id == user.pk)


def can_create_room(user: User, *, staff_only: bool, users_may_create: bool) -> bool:
    """True if ``user`` may create a room: staff always; others an open one if the site allows."""
    if not is_chat_user(user):
        return False
    if user.is_staff:
        return True
    return users_may_create and not staff_only


def can_post_type(user: User, msg_type: int) -> bool:
    """True if ``user`` may post a message of ``msg_type`` (warnings and alerts: staff only)."""
    if msg_type == MsgType.MESSAGE:
        return True
    return msg_type in STAFF_TYPES and bool(user.is_staff)
