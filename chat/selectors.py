"""Reads shared by the socket, the views and the admin."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from chat import accounts, permissions, protocol
from chat.compiled import Compiled
from chat.errors import ChatError, ErrorCode
from chat.models import (
    Change,
    Mention,
    Message,
    Reaction,
    ReadPosition,
    Room,
    RoomKind,
    RoomLeft,
    RoomMember,
)
from chat.permissions import Account, RoomAccess, User


def room_list_for_user(*, user: User) -> QuerySet[Room]:
    """The rooms ``user`` may see and enter, by title."""
    return Room.objects.filter(permissions.enterable_rooms(user))


@dataclass(frozen=True)
class RoomUnread:
    """A room the user may enter, with their read position and unread counts in it."""

    room: Room
    read_seq: int
    read_posts: int  # the room's post count as of read_seq
    unread: int
    mentions: int
    left: bool = False  # the user left it (chat.rooms.room_depart): not in their list
    members: list[str] | None = None  # a direct conversation's usernames; None for a room

    @property
    def created_by(self) -> str | None:
        """The username of who created the room; None if made in the admin (or deleted)."""
        creator = self.room.created_by
        return None if creator is None else creator.get_username()


def rooms_left(*, user: Account) -> set[int]:
    """The ids of the rooms ``user`` left (chat.rooms.room_depart) and has not rejoined."""
    return set(RoomLeft.objects.filter(user_id=user.pk).values_list("room_id", flat=True))


def room_list_with_unread(*, user: Account, include_left: bool = False) -> list[RoomUnread]:
    """The rooms in ``user``'s list, by title, each with read position, unread and mention counts.

    One list for the REST room list and the chat page, so both count alike.
    Rooms the user left are left out, unless ``include_left`` (the browse
    list: every room the user may enter, each saying whether they left it).
    """
    read = read_positions(user=user)
    mentions = unread_mentions(user_ids=[user.pk])[user.pk]
    left = rooms_left(user=user)
    found = [
        r
        for r in room_list_for_user(user=user).select_related("created_by")
        if include_left or r.pk not in left
    ]
    members = member_names(rooms=found)
    return [
        RoomUnread(
            room=r,
            read_seq=read.get(r.pk, (0, 0))[0],
            read_posts=read.get(r.pk, (0, 0))[1],
            unread=max(0, r.posts - read.get(r.pk, (0, 0))[1]),
            mentions=mentions[r.pk],
            left=r.pk in left,
            members=members.get(r.pk),
        )
        for r in found
    ]


def room_unread(*, user: Account, room: Room) -> RoomUnread:
    """One room's entry of ``room_list_with_unread`` for ``user`` (after a create or rename)."""
    read, posts = read_positions(user=user, room_ids=[room.pk]).get(room.pk, (0, 0))
    return RoomUnread(
        room=room,
        read_seq=read,
        read_posts=posts,
        unread=max(0, room.posts - posts),
        mentions=unread_mentions(user_ids=[user.pk])[user.pk][room.pk],
        left=RoomLeft.objects.filter(user_id=user.pk, room_id=room.pk).exists(),
        members=member_names(rooms=[room]).get(room.pk),
    )


def member_names(*, rooms: Iterable[Room]) -> dict[int, list[str]]:
    """The sorted usernames of each direct conversation among ``rooms`` (one query)."""
    direct = [r.pk for r in rooms if r.kind == RoomKind.DIRECT]
    names: dict[int, list[str]] = {pk: [] for pk in direct}
    if direct:
        rows = (
            RoomMember.objects.filter(room_id__in=direct)
            .order_by(accounts.by_name("user__"))
            .values_list("room_id", accounts.by_name("user__"))
        )
        for room_id, username in rows:
            names[room_id].append(username)
    return names


def room_for_user(*, user: User, room_id: int) -> Room:
    """The room ``room_id`` if ``user`` may enter it; raises ROOM_INVALID or ROOM_ACCESS_DENIED."""
    fields = ("id", "title", "staff_only", "last_seq", "posts", *permissions.ROOM_ACCESS_FIELDS)
    room = Room.objects.filter(pk=room_id).only(*fields).first()
    if room is None:
        raise ChatError(ErrorCode.ROOM_INVALID, f"There is no room {room_id}.")
    if not permissions.can_enter(user, room):
        raise ChatError(
            ErrorCode.ROOM_ACCESS_DENIED, permissions.refused_detail(room_id, str(room.kind))
        )
    return room


@dataclass(frozen=True, slots=True)
class JoinRoom:
    """A room a user may enter, with their read position in it: what a join replies."""

    room_id: int
    title: str
    staff_only: bool
    kind: str
    last_seq: int
    posts: int
    read_seq: int
    read_posts: int
    members: list[str] | None  # a direct conversation's usernames, sorted; None for a room


def _room_with_position(room_id: int, user_id: int) -> QuerySet[Any, Any]:
    """The room's join fields and ``user_id``'s read position in it (seq, posts), one row."""
    position = ReadPosition.objects.filter(room_id=OuterRef("pk"), user_id=user_id)
    return (
        Room.objects.filter(pk=room_id)
        .annotate(
            read_seq=Subquery(position.values("seq")[:1]),
            read_posts=Subquery(position.values("posts")[:1]),
        )
        .values_list(
            "id", "title", "staff_only", "kind", "last_seq", "posts", "read_seq", "read_posts"
        )
    )


# Read at every join: compiled once (chat.compiled).
_room_with_position_read = Compiled(_room_with_position, room_id=-7, user_id=-8)


def room_for_join(*, user: Account, room_id: int) -> JoinRoom:
    """``room_for_user`` and ``read_positions`` for one room in one query (a conversation: two).

    Raises ROOM_INVALID or ROOM_ACCESS_DENIED as room_for_user does, by the
    same rule (permissions.can_enter).
    """
    rows = _room_with_position_read.rows(room_id=room_id, user_id=user.pk)
    if not rows:
        raise ChatError(ErrorCode.ROOM_INVALID, f"There is no room {room_id}.")
    pk, title, staff_only, kind, last_seq, posts, read_seq, read_posts = rows[0]
    names: list[str] | None = None
    if kind == RoomKind.DIRECT:
        found = (
            RoomMember.objects.filter(room_id=pk)
            .order_by(accounts.by_name("user__"))
            .values_list("user_id", accounts.by_name("user__"))
        )
        access = RoomAccess(
            staff_only=staff_only, kind=kind, members=frozenset(u for u, _ in found)
        )
        names = [name for _, name in found]
    else:
        access = RoomAccess(staff_only=staff_only, kind=kind)
    if not permissions.can_enter(user, access):
        raise ChatError(ErrorCode.ROOM_ACCESS_DENIED, permissions.refused_detail(room_id, kind))
    return JoinRoom(
        room_id=pk,
        title=title,
        staff_only=staff_only,
        kind=kind,
        last_seq=last_seq,
        posts=posts,
        read_seq=read_seq or 0,
        read_posts=read_posts or 0,
        members=names,
    )


def messages_after(*, room_id: int, after: int, upto: int) -> list[Message]:
    """The room's posts with ``after < seq <= upto``, oldest first (changes left out)."""
    return list(
        Message.objects.filter(room_id=room_id, seq__gt=after, seq__lte=upto).order_by("seq")
    )


def reactions_of(messages: Iterable[Message]) -> dict[int, list[protocol.ReactionSummary]]:
    """Each post's reactions (by message id), grouped by emoji in the order first given.

    One query for the whole page; a post without reactions is left out.
    """
    ids = [m.pk for m in messages if not m.deleted]
    if not ids:
        return {}
    grouped: dict[int, dict[str, list[str]]] = {}
    rows = Reaction.objects.filter(message_id__in=ids).order_by("message_id", "created", "id")
    for message_id, emoji, username in rows.values_list("message_id", "emoji", "username"):
        grouped.setdefault(message_id, {}).setdefault(emoji, []).append(username)
    return {
        message_id: [protocol.ReactionSummary(emoji=e, users=u) for e, u in emojis.items()]
        for message_id, emojis in grouped.items()
    }


def changes_after(*, room_id: int, after: int, upto: int) -> list[tuple[int, str]]:
    """The room's stored changes with ``after < seq <= upto``: (seq, encoded frame), by seq."""
    changes = Change.objects.filter(room_id=room_id, seq__gt=after, seq__lte=upto)
    return list(changes.order_by("seq").values_list("seq", "frame"))


def message_page(*, room_id: int, before: int | None, limit: int) -> tuple[list[Message], bool]:
    """The ``limit`` newest posts below ``before``, oldest first, and whether more exist.

    Posts only, each as it is now (edits applied, deletions as tombstones):
    a page's seqs skip the changes' seqs.
    """
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


def read_seqs(*, user: Account, room_ids: Iterable[int] | None = None) -> dict[int, int]:
    """The user's read position in each room that has one (all rooms, or ``room_ids``)."""
    positions = ReadPosition.objects.filter(user_id=user.pk)
    if room_ids is not None:
        positions = positions.filter(room_id__in=list(room_ids))
    return dict(positions.values_list("room_id", "seq"))


def read_positions(
    *, user: Account, room_ids: Iterable[int] | None = None
) -> dict[int, tuple[int, int]]:
    """The user's read positions per room: (seq, posts as of it); unread = Room.posts - posts."""
    positions = ReadPosition.objects.filter(user_id=user.pk)
    if room_ids is not None:
        positions = positions.filter(room_id__in=list(room_ids))
    return {
        room: (seq, posts) for room, seq, posts in positions.values_list("room_id", "seq", "posts")
    }


def unread_mentions(*, user_ids: Iterable[int]) -> dict[int, Counter[int]]:
    """Each user's unread mentions per room (above their read position), nonzero only.

    Counts the user's Mention rows and the ``@room`` messages of every room,
    deleted messages left out. Permissions are the caller's (it knows the
    rooms it may show). Two queries whatever the number of users.
    """
    users = list(user_ids)
    counts: dict[int, Counter[int]] = {u: Counter() for u in users}
    read = ReadPosition.objects.filter(user_id=OuterRef("user_id"), room_id=OuterRef("room_id"))
    rows = (
        Mention.objects.filter(user_id__in=users, message__deleted=False)
        .annotate(read=Coalesce(Subquery(read.values("seq")[:1]), Value(0)))
        .filter(seq__gt=F("read"))
        .values_list("user_id", "room_id")
        .annotate(n=Count("id"))
    )
    for user_id, room_id, n in rows:
        counts[user_id][room_id] += n
    everyone = list(
        Message.objects.filter(mentions_room=True, deleted=False).values_list("room_id", "seq")
    )
    if everyone:
        positions = ReadPosition.objects.filter(
            user_id__in=users, room_id__in={room_id for room_id, _ in everyone}
        ).values_list("user_id", "room_id", "seq")
        seen = {(u, r): seq for u, r, seq in positions}
        for user_id in users:
            for room_id, seq in everyone:
                if seq > seen.get((user_id, room_id), 0):
                    counts[user_id][room_id] += 1
    return counts


def mention_page(*, user: Account, before: int | None, limit: int) -> tuple[list[Message], bool]:
    """The ``limit`` newest messages that mention ``user`` below message id ``before``.

    Newest first; only in rooms the user may enter now; ``@room`` messages
    count for everyone who may enter, except their author.
    """
    mine = Mention.objects.filter(user_id=user.pk).values("message_id")
    messages = Message.objects.filter(
        Q(pk__in=mine) | (Q(mentions_room=True) & ~Q(author_id=user.pk)),
        deleted=False,
        room__in=room_list_for_user(user=user),
    )
    if before is not None:
        messages = messages.filter(pk__lt=before)
    page = list(messages.order_by("-pk")[: limit + 1])
    return page[:limit], len(page) > limit


def rooms_now(*, room_ids: Iterable[int]) -> dict[int, tuple[RoomAccess, int, int]]:
    """Each room's access fields, newest seq and post count, read now (gone rooms left out)."""
    fields = ("pk", "last_seq", "posts", *permissions.ROOM_ACCESS_FIELDS)
    found = list(Room.objects.filter(pk__in=list(room_ids)).only(*fields))
    access = permissions.access_of(found)
    return {room.pk: (access[room.pk], room.last_seq, room.posts) for room in found}
