"""Reads shared by the socket, the views and the admin."""

from __future__ import annotations

from django.db.models import QuerySet

from chat import permissions
from chat.errors import ChatError, ErrorCode
from chat.models import Message, Room
from chat.permissions import User


def room_list_for_user(*, user: User) -> QuerySet[Room]:
    """The rooms ``user`` may see and enter, by title."""
    return Room.objects.filter(permissions.enterable_rooms(user))


def room_for_user(*, user: User, room_id: int) -> Room:
    """The room ``room_id`` if ``user`` may enter it; raises ROOM_INVALID or ROOM_ACCESS_DENIED."""
    fields = ("id", "title", "staff_only", "last_seq", *permissions.ROOM_ACCESS_FIELDS)
    room = Room.objects.filter(pk=room_id).only(*fields).first()
    if room is None:
        raise ChatError(ErrorCode.ROOM_INVALID, f"There is no room {room_id}.")
    if not permissions.can_enter(user, room):
        raise ChatError(ErrorCode.ROOM_ACCESS_DENIED, f"Room {room_id} is for staff only.")
    return room


def messages_after(*, room_id: int, after: int, upto: int) -> list[Message]:
    """The room's messages with ``after < seq <= upto``, oldest first."""
    return list(
        Message.objects.filter(room_id=room_id, seq__gt=after, seq__lte=upto).order_by("seq")
    )


def message_page(*, room_id: int, before: int | None, limit: int) -> tuple[list[Message], bool]:
    """The ``limit`` newest messages below ``before``, oldest first, and whether more exist."""
    messages = Message.objects.filter(room_id=room_id)
    if before is not None:
        messages = messages.filter(seq__lt=before)
    page = list(messages.order_by("-seq")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    page.reverse()
    return page, has_more


def room_last_seqs(*, room_ids: list[int]) -> dict[int, int]:
    """The newest seq of each of these rooms (a room that is gone is left out)."""
    return dict(Room.objects.filter(pk__in=room_ids).values_list("pk", "last_seq"))
