"""Rooms people make and leave: create, rename, leave and rejoin, and the live room list.

The write rules of chat.services, for the room list: every surface (REST,
the page, the CLI) calls these. The live list is published from
``room_listing_saved`` and ``room_listing_deleted``, which chat.signals calls
for every save and delete of a Room, whoever makes it (these services, the
admin, a management command, the shell): each connected socket whose user
may see the room learns of it after the commit (chat.activity), and a socket
whose user may no longer see it is told it is gone. A QuerySet ``update()``
sends no signal, so it changes no open page.

"Leaving" is Slack's: the room drops out of the person's room list and
counts, on every device, until they join it again from the browse list. It
changes nothing about who may enter the room (chat.permissions).
"""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.db import transaction

from chat import events, permissions, protocol, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Room, RoomLeft
from chat.permissions import Account


def _clean_title(title: str) -> str:
    """The title, stripped; BAD_REQUEST if blank, too long or with a control character."""
    limit = settings.CHAT_ROOM_TITLE_MAX_LENGTH
    if len(title) > limit:
        raise ChatError(
            ErrorCode.BAD_REQUEST, f"The title has {len(title)} characters; the limit is {limit}."
        )
    if any(unicodedata.category(c) == "Cc" for c in title):
        raise ChatError(ErrorCode.BAD_REQUEST, "The title contains a control character.")
    clean = title.strip()
    if not clean:
        raise ChatError(ErrorCode.BAD_REQUEST, "The title is empty.")
    return clean


def room_create(*, user: Account, title: str, staff_only: bool = False) -> Room:
    """Create a room made by ``user`` (CHAT_USERS_CREATE_ROOMS, or staff); charged to ``rooms``."""
    if not permissions.can_create_room(
        user, staff_only=staff_only, users_may_create=settings.CHAT_USERS_CREATE_ROOMS
    ):
        detail = (
            "Only staff may create staff-only rooms."
            if staff_only and settings.CHAT_USERS_CREATE_ROOMS
            else "Only staff may create rooms here."
        )
        raise ChatError(ErrorCode.ROOM_ACCESS_DENIED, detail)
    clean = _clean_title(title)
    services.charge(user, "rooms")
    return services.room_save(room=Room(title=clean, staff_only=staff_only, created_by=user))


def room_rename(*, user: Account, room_id: int, title: str) -> Room:
    """Rename a room: its creator or staff; charged to ``rooms`` (the same title is a no-op)."""
    room = selectors.room_for_user(user=user, room_id=room_id)
    if not permissions.can_rename(user, room):
        raise ChatError(
            ErrorCode.ROOM_ACCESS_DENIED, "Only the room's creator or staff may rename it."
        )
    clean = _clean_title(title)
    if clean == room.title:
        return room
    services.charge(user, "rooms")
    room.title = clean
    # Only the title: the rest of the row may have moved since the read (last_seq does).
    return services.room_save(room=room, fields=["title"])


def room_depart(*, user: Account, room_id: int) -> None:
    """Leave a room (Slack's sense): it drops out of the user's list on every device.

    Charged to the join budget; leaving a room already left changes nothing
    and tells no one.
    """
    selectors.room_for_user(user=user, room_id=room_id)
    services.charge(user, "join")
    with transaction.atomic():
        _, created = RoomLeft.objects.get_or_create(user=user, room_id=room_id)
        if created:
            events.publish_user_rooms_on_commit(user.pk, protocol.RoomLeftEvent(room_left=room_id))


def room_return(*, user: Account, room_id: int) -> Room:
    """Join a room left before: it is back in the user's list on every device (join budget)."""
    room = selectors.room_for_user(user=user, room_id=room_id)
    services.charge(user, "join")
    with transaction.atomic():
        deleted, _ = RoomLeft.objects.filter(user=user, room_id=room_id).delete()
        if deleted:
            frame = protocol.RoomRejoinedEvent(
                room_rejoined=room.pk,
                title=room.title,
                staff_only=room.staff_only,
                created_by=_creator(room),
            )
            events.publish_user_rooms_on_commit(user.pk, frame)
    return room


def _creator(room: Room) -> str | None:
    """The username of who made ``room``, or None (made in the admin, or the user is gone)."""
    if room.created_by_id is None:
        return None
    creator: Account | None = room.created_by
    return None if creator is None else creator.get_username()


def room_listing_saved(*, room: Room, created: bool) -> None:
    """A room was saved (any path): after the commit, every socket's room list follows."""
    frame = protocol.RoomListedEvent(
        room_listed=room.pk, title=room.title, staff_only=room.staff_only, created_by=_creator(room)
    )
    events.publish_room_listing_on_commit(
        room.pk, permissions.RoomAccess.of(room), listed=frame, created=created
    )


def room_listing_deleted(*, room_id: int, access: permissions.RoomAccess) -> None:
    """A room was deleted (any path): after the commit, it leaves every socket's room list."""
    events.publish_room_listing_on_commit(room_id, access, listed=None)
