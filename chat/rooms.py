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

Direct conversations (``direct_open``): one per set of people, found by its
``direct_key`` (the sorted member ids). Leaving one is Slack's "close": it
leaves the list until its member opens it again, or until another member
posts in it (chat.services ``direct_post_returns``), which puts it back in the list of every
member who had closed it. Its title is its members' usernames (for the
admin and search); each page shows the other members' display names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from chat import accounts, conf, events, permissions, protocol, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Room, RoomKind, RoomLeft, RoomMember
from chat.permissions import Account


def _clean_title(title: str) -> str:
    """The title, stripped; BAD_REQUEST if blank, too long or with a control character."""
    limit = conf.CHAT_ROOM_TITLE_MAX_LENGTH
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
        user, staff_only=staff_only, users_may_create=conf.CHAT_USERS_CREATE_ROOMS
    ):
        detail = (
            "Only staff may create staff-only rooms."
            if staff_only and conf.CHAT_USERS_CREATE_ROOMS
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
            events.publish_user_rooms_on_commit(user.pk, events.rejoined_frame(room))
    return room


def room_listing_saved(*, room: Room, created: bool) -> None:
    """A room was saved (any path): after the commit, every socket's room list follows.

    A new direct conversation has no members yet when its row is saved:
    ``direct_open`` publishes it once they are stored.
    """
    if created and room.kind == RoomKind.DIRECT:
        return
    events.publish_room_listing_on_commit(
        room.pk, permissions.RoomAccess.of(room), listed=events.listed_frame(room), created=created
    )


def room_listing_deleted(*, room_id: int, access: permissions.RoomAccess) -> None:
    """A room was deleted (any path): after the commit, it leaves every socket's room list."""
    events.publish_room_listing_on_commit(room_id, access, listed=None)


def _direct_people(user: Account, usernames: Sequence[str]) -> list[Account]:
    """The accounts of a conversation: ``user`` and the named others (USER_INVALID if unknown)."""
    wanted = {name for name in usernames if name != user.get_username()}
    limit = conf.CHAT_DIRECT_MAX_MEMBERS
    if len(wanted) + 1 > limit:
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            f"A direct conversation has at most {limit} people, you included; "
            f"{len(wanted) + 1} were named.",
        )
    possible = {n for n in wanted if 0 < len(n) <= 150 and "\x00" not in n}
    found = list(
        get_user_model()._default_manager.filter(**accounts.named(possible), is_active=True)
    )
    missing = sorted(wanted - {u.get_username() for u in found})
    if missing:
        raise ChatError(
            ErrorCode.USER_INVALID,
            f"No active account is named {', '.join(repr(n) for n in missing)}.",
        )
    return [user, *found]


def direct_open(*, user: Account, usernames: Sequence[str]) -> tuple[Room, bool]:
    """The direct conversation of ``user`` and ``usernames``, made if missing; (room, created).

    One conversation per set of people (``direct_key``): of two openers racing,
    one inserts and the other finds its row (the unique key, retried once).
    ``usernames`` may name the user, or nobody else (notes to self). A new one
    is charged to the ``rooms`` budget, and each member's sockets list it at
    once (``room_listed``); opening an existing one is charged to ``join`` and
    puts it back in the opener's list if they had left it.
    """
    if not permissions.is_chat_user(user):
        raise ChatError(ErrorCode.ROOM_ACCESS_DENIED, "Log in with an active account.")
    people = _direct_people(user, usernames)
    key = ",".join(str(pk) for pk in sorted(u.pk for u in people))
    for attempt in range(2):
        room = Room.objects.filter(direct_key=key).first()
        if room is not None:
            break
        if attempt == 0:
            services.charge(user, "rooms")
        try:
            return _direct_create(key, people, creator=user), True
        except IntegrityError:
            continue  # another opener made it first: the next round finds it
    if room is None:  # only if the row was deleted between the insert and the read
        raise ChatError(ErrorCode.SERVER_ERROR, "The conversation changed; try again.")
    if RoomLeft.objects.filter(user=user, room=room).exists():
        room_return(user=user, room_id=room.pk)
    else:
        services.charge(user, "join")
    return room, False


def _direct_create(key: str, people: list[Account], *, creator: Account) -> Room:
    """Store a conversation and its members in one transaction; list it for each member."""
    names = sorted(u.get_username() for u in people)
    title = ", ".join(names)[:255]  # Room.title's max_length
    with transaction.atomic():
        room = Room.objects.create(
            title=title, kind=RoomKind.DIRECT, direct_key=key, created_by=creator
        )
        RoomMember.objects.bulk_create(RoomMember(room=room, user=u) for u in people)
        access = permissions.RoomAccess(
            staff_only=False, kind=RoomKind.DIRECT, members=frozenset(u.pk for u in people)
        )
        frame = protocol.RoomListedEvent(
            room_listed=room.pk,
            title=room.title,
            staff_only=False,
            created_by=creator.get_username(),
            kind="direct",
            members=names,
        )
        events.publish_room_listing_on_commit(room.pk, access, listed=frame, created=True)
    return room
