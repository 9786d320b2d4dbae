"""Every write and every rule of the chat. Events are published only after commit.

The consumer, the admin, the views and the management commands all call
these functions, so a message posted from anywhere reaches the sockets the
same way. They are synchronous (they use the ORM); async callers wrap them
in ``database_sync_to_async``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection, transaction
from django.utils import timezone

from chat import (
    accounts,
    conf,
    events,
    markup,
    metrics,
    permissions,
    protocol,
    ratelimit,
    roster,
    selectors,
)
from chat import files as chat_files
from chat.errors import ChatError, ErrorCode
from chat.models import (
    STORED_TYPES,
    Attachment,
    Change,
    ChangeKind,
    Mention,
    Message,
    MsgType,
    Reaction,
    ReadPosition,
    Room,
    RoomKind,
    RoomLeft,
    RoomMember,
)
from chat.permissions import Account

log = logging.getLogger(__name__)


# ``@name`` not preceded by a word character or ``@`` (so an e-mail address is no
# mention); the name is made of Django's username characters, without a final dot.
MENTION_RE = re.compile(r"(?<![\w@])@([\w.@+-]*[\w@+-])")


@dataclass(frozen=True, slots=True)
class JoinResult:
    """What a socket needs to reply to a join: the room, and the replay frames in seq order."""

    room_id: int
    title: str
    staff_only: bool
    last_seq: int
    replay: list[str]
    truncated: bool
    read_seq: int
    posts: int
    read_posts: int
    kind: protocol.RoomKindName = "room"
    members: list[str] | None = None  # a direct conversation's usernames


def _username(user: Account | None) -> str:
    return user.get_username() if user is not None else ""


# Stands for the poster's id while a rule's shape is compiled (an id no account has).
_USER_PLACEHOLDER = -4_611_686_018_427_387_903


@functools.lru_cache(maxsize=8)
def _room_filter_sql(
    klass: tuple[bool, bool],
) -> tuple[str, tuple[Any, ...], tuple[int, ...]] | None:
    """The rule for an access class compiled to SQL, its parameters, and where the user's id goes.

    None if it lets in no room; "" if every room. Cached per class, not per
    user (a handful of entries): the user's id is bound into the parameters at
    the returned positions (a direct conversation's membership subquery).
    Compiling costs more than the post's statement.
    """
    query = Room.objects.filter(permissions.enterable_rooms_shape(klass, _USER_PLACEHOLDER)).query
    try:
        where, params = query.get_compiler(connection=connection).compile(query.where)
    except EmptyResultSet:
        return None
    except FullResultSet:
        return "", (), ()
    slots = tuple(i for i, p in enumerate(params) if type(p) is int and p == _USER_PLACEHOLDER)
    return where, tuple(params), slots


def _room_filter(user: Account) -> tuple[str, list[Any]] | None:
    """permissions.enterable_rooms(user) as SQL and parameters, from the class's cached shape."""
    compiled = _room_filter_sql(permissions.access_class(user))
    if compiled is None:
        return None
    where, params, slots = compiled
    bound = list(params)
    for i in slots:
        bound[i] = user.pk
    return where, bound


def _take_seq_sql(
    room_id: int, user: Account | None, *, post: bool = True
) -> tuple[str, list[Any]] | None:
    """The UPDATE that takes the room's next seq if ``user`` may post there, and its parameters.

    Its condition is compiled from permissions.enterable_rooms, the rule that
    every room list and check uses; a refused post matches no row and takes
    no seq. The system (``user`` None) posts anywhere. None if the rule lets
    ``user`` into no room at all. The row lock the UPDATE takes is held until
    commit, so concurrent posters to one room get consecutive seqs and commit
    in order.
    """
    compiled: tuple[str, list[Any]] | None = ("", []) if user is None else _room_filter(user)
    if compiled is None:
        return None
    where, params = compiled
    table = connection.ops.quote_name(Room._meta.db_table)
    # A post also counts in ``posts`` (unread counts read it); a change (``post`` False) does not.
    count = ", posts = posts + 1" if post else ""
    sql = f"UPDATE {table} SET last_seq = last_seq + 1{count} WHERE id = %s"
    if where:
        sql += f" AND ({where})"
    return f"{sql} RETURNING id, last_seq, posts, kind", [room_id, *params]


def _refused(room_id: int) -> ChatError:
    """Why a post to ``room_id`` took no seq: there is no such room, or it may not be entered."""
    kind = Room.objects.filter(pk=room_id).values_list("kind", flat=True).first()
    if kind is None:
        return ChatError(ErrorCode.ROOM_INVALID, f"There is no room {room_id}.")
    return ChatError(ErrorCode.ROOM_ACCESS_DENIED, permissions.refused_detail(room_id, kind))


def _store(
    *,
    room_id: int,
    user: Account | None,
    text: str,
    msg_type: int,
    reply_to: int | None = None,
    files: Sequence[str] = (),
) -> Message:
    """Store a message with the room's next seq, if ``user`` may post there (None: the system).

    Its formatted form (``markup.render``) is stored with it. The poster's
    read position moves to the new seq in the same transaction (on
    PostgreSQL, in the same statement). A text with an ``@`` also stores its
    mentions there, and a post with ``files`` claims those uploads there
    (``_store_with_extras``); any other post pays nothing for them.
    """
    if user is not None and not permissions.is_chat_user(user):
        raise ChatError(ErrorCode.ROOM_ACCESS_DENIED, "Log in with an active account to post.")
    message = Message(
        room_id=room_id,
        author=user,
        username=_username(user),
        msg_type=msg_type,
        text=text,
        reply_to=reply_to,
    )
    # Rendered once here, not per recipient: every frame of this message carries it.
    message.html = markup.render(text)
    take_seq = _take_seq_sql(room_id, user)
    if take_seq is None:
        raise _refused(room_id)
    if "@" in text or files:
        _store_with_extras(message, take_seq, user, files)
        return message
    if connection.vendor == "postgresql":
        _insert_in_one_statement(message, take_seq, reader=user)
        return message
    with transaction.atomic():
        _take_seq(message, take_seq)
        message.save(force_insert=True)
        if user is not None:
            _advance_read(user_id=user.pk, room_id=room_id, seq=message.seq, posts=message.num)
    return message


def _take_seq(message: Message, take_seq: tuple[str, list[Any]]) -> None:
    """Run the UPDATE that takes the room's next seq into ``message.seq`` (inside a transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(*take_seq)
        row = cursor.fetchone()
    if row is None:
        raise _refused(message.room_id)
    message.seq, message.num, message.room_kind = row[1], row[2], row[3]


def _store_with_extras(
    message: Message, take_seq: tuple[str, list[Any]], user: Account | None, keys: Sequence[str]
) -> None:
    """Store ``message`` with its files and its ``@username`` mentions (and staff's ``@room``)
    in one transaction.

    The files (``keys``) must be the poster's uploads not yet posted: they are
    claimed (locked) before the seq is taken, so a refused post takes no seq
    and claims nothing. Only users who may enter the room are mentioned, and
    never the author; each mentioned user's sockets get a mention frame after the commit.
    """
    names = set(MENTION_RE.findall(message.text)) if "@" in message.text else set()
    message.mentions_room = "room" in names and user is not None and permissions.is_manager(user)
    with transaction.atomic():
        claimed: list[Any] = []
        if keys:
            if user is None:
                raise ValueError("the system posts no files")
            claimed = chat_files.claim(user=user, keys=keys)
            message.files = chat_files.descriptors(claimed)
        _take_seq(message, take_seq)
        message.save(force_insert=True)
        if claimed:
            chat_files.attach(claimed, message)
        if user is not None:
            _advance_read(
                user_id=user.pk, room_id=message.room_id, seq=message.seq, posts=message.num
            )
        if not names:
            return
        access = _mention(message, names, author=user)
        if message.mentions_room:
            frame = events.mention_event(message)
            events.publish_room_mention_on_commit(message.room_id, frame, access)


def _mention(
    message: Message,
    names: set[str],
    *,
    author: Account | None,
    known: frozenset[int] = frozenset(),
) -> permissions.RoomAccess:
    """Store a Mention of each user ``names`` names who may enter the room (never the author,
    nor the ``known`` ids, mentioned already), and notify them after the commit.

    Returns the room's access fields. Inside the caller's transaction.
    """
    room = Room.objects.only(*permissions.ROOM_ACCESS_FIELDS).get(pk=message.room_id)
    access = permissions.RoomAccess.of(room)
    candidates = (
        get_user_model()._default_manager.filter(**accounts.named(names)).exclude(pk__in=known)
    )
    if author is not None:
        candidates = candidates.exclude(pk=author.pk)
    # A conversation's non-member is not mentioned: nothing is stored, nothing is sent.
    mentioned = [u for u in candidates if permissions.can_enter(u, access)]
    Mention.objects.bulk_create(
        Mention(user=u, room_id=message.room_id, message=message, seq=message.seq)
        for u in mentioned
    )
    frame = events.mention_event(message)
    for u in mentioned:
        events.publish_mention_on_commit(u.pk, frame, access)
    return access


@functools.cache
def _read_upsert_sql(vendor: str) -> str:
    """An upsert of one read position that never moves it back; selects (user, room, seq, posts).

    ``posts`` is the room's post count as of ``seq``; it moves with ``seq``.
    """
    quote = connection.ops.quote_name
    table = quote(ReadPosition._meta.db_table)
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"
    return (
        f"INSERT INTO {table} (user_id, room_id, seq, posts) {{select}} "
        f"ON CONFLICT (user_id, room_id) DO UPDATE "
        f"SET seq = {greatest}({table}.seq, excluded.seq), "
        f"posts = {greatest}({table}.posts, excluded.posts)"
    )


def _advance_read(*, user_id: int, room_id: int, seq: int, posts: int) -> None:
    """Move ``user_id``'s read position in the room up to ``seq`` (never back), in one statement."""
    sql = _read_upsert_sql(connection.vendor).format(select="VALUES (%s, %s, %s, %s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, room_id, seq, posts])


@functools.cache
def _insert_sql() -> str:
    """The INSERT of ``_insert_in_one_statement``, built once from the Message table."""
    quote = connection.ops.quote_name
    column = {f.name: quote(f.column) for f in Message._meta.concrete_fields if f.column}
    return (
        f"INSERT INTO {quote(Message._meta.db_table)} ({column['room']}, {column['author']}, "
        f"{column['username']}, {column['msg_type']}, {column['text']}, {column['seq']}, "
        f"{column['created']}, {column['deleted']}, {column['num']}, {column['html']}, "
        f"{column['reply_to']}, {column['files']}) "
        "SELECT id, %s, %s, %s, %s, last_seq, %s, false, posts, %s, %s, %s FROM taken "
        f"RETURNING {column['id']}, {column['seq']}, {column['num']}"
    )


def _insert_in_one_statement(
    message: Message, take_seq: tuple[str, list[Any]], *, reader: Account | None
) -> None:
    """PostgreSQL: take the next seq and insert ``message`` in one statement (one round trip).

    The UPDATE in the CTE (``_take_seq_sql``) takes the room's row lock, held
    until the statement's transaction commits; it only matches a room the
    poster may enter, so a refused post takes no seq. With a ``reader`` (the
    poster), a second CTE moves their read position to the new seq: one more
    index upsert in the same statement, no extra round trip.
    """
    update, update_params = take_seq
    params = [*update_params, message.author_id, message.username, message.msg_type,
              message.text, message.created, message.html, message.reply_to,
              message.files]  # fmt: skip
    ctes = f"taken AS ({update})"
    if reader is not None:
        upsert = _read_upsert_sql("postgresql").format(
            select="SELECT %s, id, last_seq, posts FROM taken"
        )
        ctes += f", seen AS ({upsert})"
        params = [*update_params, reader.pk, *params[len(update_params) :]]
    # The room's kind comes back with the row, so a post in a room needs no query about it.
    ctes += f", inserted AS ({_insert_sql()})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {ctes} SELECT inserted.*, taken.kind FROM inserted CROSS JOIN taken", params
        )
        row = cursor.fetchone()
    if row is None:
        raise _refused(message.room_id)
    message.pk, message.seq, message.num, message.room_kind = row
    message._state.adding = False


def room_post(
    *,
    room_id: int,
    user: Account | None,
    text: str,
    msg_type: int = MsgType.MESSAGE,
    reply_to: int | None = None,
    files: Sequence[str] = (),
) -> Message:
    """Post to a room: the one function through which every stored message reaches a room.

    The message gets the room's next seq and is published after commit.
    Enter/leave notices are not posts: chat.presence publishes them. Rules
    about who may post what are the caller's (see ``message_send``).
    """
    if msg_type not in STORED_TYPES:
        raise ValueError(f"msg_type {msg_type} is not stored; notices go through chat.presence")
    if not events.layer_usable(room_id):
        raise ChatError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "Live delivery is down (the channel layer does not answer); nothing was stored. "
            "Try again shortly.",
        )
    try:
        message = _store(
            room_id=room_id,
            user=user,
            text=text,
            msg_type=msg_type,
            reply_to=reply_to,
            files=files,
        )
        metrics.POSTS.inc()
        # After the commit (at once in autocommit; at the outer commit inside a transaction).
        events.publish_on_commit(room_id, events.message_event(message), seq=message.seq)
        events.publish_activity_on_commit(room_id, message.seq)
    except events.PublishFailed:
        raise events.not_announced(message.seq) from None
    return message


def message_send(
    *,
    user: Account,
    room_id: int,
    text: str,
    msg_type: int = MsgType.MESSAGE,
    reply_to: int | None = None,
    files: Sequence[str] = (),
) -> Message:
    """Post a user's message, checking the type, the length and the room's access rule.

    ``reply_to`` (a reply) must be the seq of a post in the room that is not deleted.
    ``files`` are ids of the user's uploads not yet posted (chat.files); the text
    may be blank when there are some.
    """
    if msg_type not in MsgType.values:
        raise ChatError(ErrorCode.BAD_REQUEST, f"`msg_type` {msg_type} is not one of 0-5.")
    if msg_type not in permissions.SOCKET_POSTABLE_TYPES:
        raise ChatError(ErrorCode.BAD_REQUEST, "Enter and leave notices are sent by the server.")
    if not permissions.can_post_type(user, msg_type):
        raise ChatError(
            ErrorCode.ROOM_ACCESS_DENIED,
            # The type's wire name, not its label: labels are translated, error texts are not.
            f"Only staff may post {MsgType(msg_type).name.lower()} messages.",
        )
    if files:
        chat_files.check_keys(files)
    _check_text(text, blank_ok=bool(files))
    charge(user, "send")
    if reply_to is not None:
        selectors.room_for_user(user=user, room_id=room_id)  # its errors before the post's
        _live_post(room_id, reply_to)
    message = room_post(
        room_id=room_id, user=user, text=text, msg_type=msg_type, reply_to=reply_to, files=files
    )
    _direct_posted(message, author=user)
    return message


def _check_text(text: str, *, blank_ok: bool = False) -> None:
    """Refuse a post's (or an edit's) text if it is blank (unless ``blank_ok``: the post has
    files), holds a NUL or is too long."""
    if not blank_ok and not text.strip():
        raise ChatError(ErrorCode.BAD_REQUEST, "`message` is empty.")
    if "\x00" in text:  # PostgreSQL text cannot hold it; no client needs it
        raise ChatError(ErrorCode.BAD_REQUEST, "`message` contains a NUL character (U+0000).")
    limit = conf.CHAT_MESSAGE_MAX_LENGTH
    if len(text) > limit:
        raise ChatError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"The message has {len(text)} characters; the limit is {limit}.",
        )


def _live_post(room_id: int, seq: int) -> Message:
    """The room's post ``seq`` if it exists and is not deleted; MESSAGE_INVALID otherwise."""
    post = Message.objects.filter(room_id=room_id, seq=seq).first()
    if post is None:
        raise ChatError(ErrorCode.MESSAGE_INVALID, f"Room {room_id} has no post {seq}.")
    if post.deleted:
        raise ChatError(ErrorCode.MESSAGE_INVALID, f"Post {seq} of room {room_id} was deleted.")
    return post


def _direct_posted(message: Message, *, author: Account) -> None:
    """A post in a direct conversation reaches its other members like a mention.

    Each other member's sockets get a mention frame (nothing is stored: every
    post there is for them), and a member who closed the conversation gets it
    back in their list (``direct_post_returns``). A post in a room costs
    nothing here: the statement that stored it read the room's kind.
    """
    if message.room_kind != RoomKind.DIRECT:
        return
    members = list(
        RoomMember.objects.filter(room_id=message.room_id).values_list("user_id", flat=True)
    )
    if not members:
        return
    access = permissions.RoomAccess(
        staff_only=False, kind=RoomKind.DIRECT, members=frozenset(members)
    )
    # Back in the list first, so the page that closed it knows the room its mention names.
    direct_post_returns(room_id=message.room_id, author=author)
    frame = events.mention_event(message)
    with transaction.atomic():
        for user_id in members:
            if user_id != author.pk:
                events.publish_mention_on_commit(user_id, frame, access)


def charge(user: Account, command_class: str) -> None:
    """Charge one command to the user's budget for its class; RATE_LIMITED when it is spent."""
    try:
        verdict = ratelimit.take(user.pk, command_class)
    except Exception as exc:
        # The limiter protects the service; it must not take the service down with it.
        log.warning("Rate limiter unavailable, allowing the %s: %s", command_class, exc)
        return
    if not verdict.allowed:
        metrics.rate_limited(command_class)
        raise ChatError(
            ErrorCode.RATE_LIMITED,
            ratelimit.refusal(command_class, retry_after=verdict.retry_after),
            retry_after=verdict.retry_after,
        )


def room_join(*, user: Account, room_id: int, since: int | None = None) -> JoinResult:
    """Check that ``user`` may enter and read what to replay after ``since``.

    The caller subscribes the socket to the room's group *before* calling, so
    any message stored after the read below also reaches it live: replay plus
    live then has no gap, and the caller drops live events with seq <= last_seq.
    A replay longer than CHAT_REPLAY_MAX keeps the newest messages and says
    ``truncated``; the client pages the rest with ``history``. Each call is
    charged to the user's join budget (RATE_LIMITED when it is spent).
    """
    charge(user, "join")
    room = selectors.room_for_join(user=user, room_id=room_id)
    replay: list[str] = []
    truncated = False
    if since is not None and since < room.last_seq:
        start = since
        if room.last_seq - since > conf.CHAT_REPLAY_MAX:
            start = room.last_seq - conf.CHAT_REPLAY_MAX
            truncated = True
        replay = events.stream_recent(room_id=room_id, after=start, upto=room.last_seq)
    return JoinResult(
        room_id=room.room_id,
        title=room.title,
        staff_only=room.staff_only,
        last_seq=room.last_seq,
        replay=replay,
        truncated=truncated,
        read_seq=room.read_seq,
        posts=room.posts,
        read_posts=room.read_posts,
        kind="direct" if room.kind == RoomKind.DIRECT else "room",
        members=room.members,
    )


def room_leave_charge(*, user: Account) -> None:
    """Charge a client's ``leave`` command to its join budget; RATE_LIMITED when it is spent.

    Called before the socket unsubscribes, so a refused leave changes nothing.
    Leaving on disconnect or expulsion is never charged: it must always happen.
    """
    charge(user, "join")


def typing_charge(*, user: Account) -> None:
    """Charge a typing notice to the user's typing budget; RATE_LIMITED when it is spent."""
    charge(user, "typing")


def room_members(*, user: Account, room_id: int) -> list[protocol.PresenceMember]:
    """Who is in a room the user may enter, on every process (chat.roster)."""
    selectors.room_for_user(user=user, room_id=room_id)
    return roster.room_members(room_id)


def room_history(
    *, user: Account, room_id: int, before: int | None = None, limit: int | None = None
) -> tuple[list[protocol.MessageEvent], bool]:
    """A page of the room's posts, as they are now, for a user who may enter it.

    Charged to the history budget. Frames, reactions included.
    """
    charge(user, "history")
    limit = _page_size(limit)
    selectors.room_for_user(user=user, room_id=room_id)
    page, has_more = selectors.message_page(room_id=room_id, before=before, limit=limit)
    return events.post_frames(page), has_more


def room_stream(
    *, user: Account, room_id: int, after: int, limit: int | None = None
) -> protocol.StreamReply:
    """The room's stream after ``after``, ``limit`` seqs at most: what a resume would replay.

    For a client that missed more than a join replays (CHAT_REPLAY_MAX): the
    posts as they are now and every change, so changes to posts it already
    had are not lost. Charged to the history budget.
    """
    charge(user, "history")
    size = _page_size(limit)
    room = selectors.room_for_user(user=user, room_id=room_id)
    upto = min(room.last_seq, after + size)
    posts = selectors.messages_after(room_id=room_id, after=after, upto=upto)
    changes = [
        protocol.decode_change(frame)
        for _, frame in selectors.changes_after(room_id=room_id, after=after, upto=upto)
    ]
    return protocol.StreamReply(
        stream=room_id,
        after=after,
        upto=max(upto, after),
        posts=events.post_frames(posts),
        changes=changes,
        has_more=upto < room.last_seq,
    )


def _page_size(limit: int | None) -> int:
    """A history-like page's size: the default when None; BAD_REQUEST outside 1..the maximum."""
    if limit is None:
        return int(conf.CHAT_HISTORY_PAGE_SIZE)
    maximum = conf.CHAT_HISTORY_MAX_PAGE_SIZE
    if not 1 <= limit <= maximum:
        raise ChatError(ErrorCode.BAD_REQUEST, f"`limit` must be between 1 and {maximum}.")
    return limit


def room_save(*, room: Room, fields: list[str] | None = None) -> Room:
    """Create or change a room (only ``fields``, if given); its members are re-checked.

    The room list of every connected socket follows by chat.signals (chat.rooms).
    """
    with transaction.atomic():
        room.save(update_fields=fields)
        events.publish_room_access_on_commit(
            room.pk, permissions.RoomAccess.of(room), deleted=False
        )
    return room


def room_delete(*, room: Room) -> None:
    """Delete a room and its messages (and their files); its members are taken out of it."""
    room_id, access = room.pk, permissions.RoomAccess.of(room)
    with transaction.atomic():
        chat_files.delete_attachments(Attachment.objects.filter(message__room_id=room_id))
        room.delete()
        events.publish_room_access_on_commit(room_id, access, deleted=True)


def user_access_changed(*, user_id: int) -> None:
    """A user was changed or deleted: their sockets reload them and re-check every room."""
    events.publish_user_changed_on_commit(user_id)


def session_ended(*, user_id: int, session_key: str) -> None:
    """A session was logged out (or a token revoked): after the commit, its sockets are closed."""
    events.publish_session_ended_on_commit(user_id, session_key)


def rooms_broadcast(*, rooms: Iterable[Room], user: Account, text: str, msg_type: int) -> int:
    """Post the same staff message (warning, alert, muted) to each room; returns how many."""
    if msg_type not in permissions.STAFF_TYPES:
        raise ChatError(ErrorCode.BAD_REQUEST, "Broadcasts are warnings, alerts or muted notes.")
    count = 0
    for room in rooms:
        room_post(room_id=room.pk, user=user, text=text, msg_type=msg_type)
        count += 1
    return count


def messages_purge(*, days: int, now: datetime | None = None) -> int:
    """Delete messages older than ``days`` days, and their files; returns how many messages."""
    if days < 1:
        raise ValueError("days must be 1 or more")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    with transaction.atomic():
        Change.objects.filter(created__lt=cutoff).delete()
        chat_files.delete_attachments(Attachment.objects.filter(message__created__lt=cutoff))
        deleted, _ = Message.objects.filter(created__lt=cutoff).delete()
    return deleted


def read_mark(*, user: Account, room_id: int, seq: int) -> tuple[int, int]:
    """Move the user's read position in the room up to ``seq`` (clamped to its last seq).

    One statement, never moving the position back; returns the stored
    position and the room's post count as of it (unread = Room.posts - that).
    Every socket of the user, on every process, is told after the commit.
    Charged to the history budget; errors as for history.
    """
    charge(user, "history")
    selectors.room_for_user(user=user, room_id=room_id)
    least = "LEAST" if connection.vendor == "postgresql" else "MIN"
    quote = connection.ops.quote_name
    table = quote(Room._meta.db_table)
    messages = quote(Message._meta.db_table)
    # The room's post count as of the read seq: the num of the newest post at or below it.
    counted = (
        f"COALESCE((SELECT m.num FROM {messages} m WHERE m.room_id = r.id "
        f"AND m.seq <= {least}(%s, r.last_seq) ORDER BY m.seq DESC LIMIT 1), 0)"
    )
    select = f"SELECT %s, r.id, {least}(%s, r.last_seq), {counted} FROM {table} r WHERE r.id = %s"
    sql = _read_upsert_sql(connection.vendor).format(select=select) + " RETURNING seq, posts"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, seq, seq, room_id])
        row = cursor.fetchone()
        if row is None:  # the room went away since the check
            raise ChatError(ErrorCode.ROOM_INVALID, f"There is no room {room_id}.")
        stored, posts = int(row[0]), int(row[1])
        events.publish_read_on_commit(user.pk, room_id, stored, posts)
    return stored, posts


def mention_list(
    *, user: Account, before: int | None = None, limit: int | None = None
) -> tuple[list[Message], bool]:
    """A page of the messages that mention ``user``, newest first (charged to history)."""
    charge(user, "history")
    return selectors.mention_page(user=user, before=before, limit=_page_size(limit))


# --- changes to posts: edit, delete, react ----------------------------------------------
#
# A change takes the room's next seq like a post (but does not count in ``posts``), under
# the same access rule and row lock, and is stored as a Change row holding its encoded
# frame; the post itself is updated in the same transaction. So a socket that resumes
# with ``since``, or fills a gap, gets every change it missed, in order, exactly once:
# events.stream_after merges posts and changes by seq.


# The wire name of each kind of change (ChangeEvent.change).
_CHANGE_NAMES: dict[int, Literal["edit", "delete", "react"]] = {
    ChangeKind.EDIT: "edit",
    ChangeKind.DELETE: "delete",
    ChangeKind.REACT: "react",
}


class _Unchanged(Exception):
    """The change would change nothing (same text, a reaction already there): store none."""


def _change(
    *,
    user: Account,
    room_id: int,
    seq: int,
    kind: ChangeKind,
    apply: Any,
    moderator: bool = False,
) -> int | None:
    """Take the room's next seq, apply ``apply(post, now)`` and store the change.

    ``apply`` checks the rules, updates the post and returns the fields of
    the change's frame that are its kind's own (the rest are the same for
    every kind); it raises ChatError to refuse (nothing is stored, no seq is
    used) or _Unchanged when there is nothing to do. Returns the change's seq, or
    None if nothing changed. Published after the commit. A ``moderator`` (staff
    in the admin) is not charged and reaches every room, direct ones too.
    """
    if not permissions.is_chat_user(user):
        raise ChatError(ErrorCode.ROOM_ACCESS_DENIED, "Log in with an active account.")
    if not moderator:
        charge(user, "send")
    if not events.layer_usable(room_id):
        raise ChatError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "Live delivery is down (the channel layer does not answer); nothing was changed. "
            "Try again shortly.",
        )
    take_seq = _take_seq_sql(room_id, None if moderator else user, post=False)
    if take_seq is None:
        raise _refused(room_id)
    now = timezone.now()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(*take_seq)
                row = cursor.fetchone()
            if row is None:
                raise _refused(room_id)
            change_seq = int(row[1])
            post = _live_post(room_id, seq)
            frame = protocol.ChangeEvent(
                change=_CHANGE_NAMES[kind],
                room=room_id,
                seq=change_seq,
                target=seq,
                username=user.get_username(),
                ts=events.iso_utc(now),
                **apply(post, now),
            )
            if kind == ChangeKind.DELETE:
                _scrub_edits(frame)
            text = protocol.encode(frame)
            Change.objects.create(
                room_id=room_id,
                seq=change_seq,
                target=seq,
                kind=kind,
                user=user,
                frame=text,
                created=now,
            )
            events.publish_text_on_commit(room_id, text, seq=change_seq)
    except _Unchanged:
        return None
    except events.PublishFailed:
        raise events.not_announced(change_seq) from None
    return change_seq


def _check_own(user: Account, post: Message, now: datetime, *, action: str) -> None:
    """Refuse unless ``post`` is the user's and, if a window is set, still inside it."""
    if post.author_id != user.pk:
        raise ChatError(ErrorCode.EDIT_DENIED, f"You may {action} only your own posts.")
    window = conf.CHAT_EDIT_WINDOW_SECONDS
    if window and (now - post.created).total_seconds() > window:
        raise ChatError(
            ErrorCode.EDIT_DENIED,
            f"Posts may be {action}ed for {window:g} seconds after they are sent; "
            "that time is over.",
        )


def message_edit(*, user: Account, room_id: int, seq: int, text: str) -> int | None:
    """Replace the text of the user's own post ``seq``; every member sees the change live.

    Returns the change's seq (None: the text was already that). A name the
    new text adds is mentioned and notified; one it drops is no longer
    mentioned (``_mentions_follow``). The post's files stay; with some, the
    new text may be blank.
    """
    _check_text(text, blank_ok=True)

    def apply(post: Message, now: datetime) -> dict[str, Any]:
        _check_own(user, post, now, action="edit")
        if not text.strip() and not post.files:
            raise ChatError(ErrorCode.BAD_REQUEST, "`message` is empty.")
        if post.text == text:
            raise _Unchanged
        post.text, post.html, post.edited = text, markup.render(text), now
        post.save(update_fields=["text", "html", "edited"])
        _mentions_follow(post, user)
        return {"message": text, "html": post.html, "edited": events.iso_utc(now)}

    return _change(user=user, room_id=room_id, seq=seq, kind=ChangeKind.EDIT, apply=apply)


def _mentions_follow(post: Message, author: Account) -> None:
    """After an edit: who the new text names is mentioned, who it no longer names is not.

    A name new to the text notifies its user (as Zulip does); a name taken out
    drops that user's mention, so their unread-mention count is right. The
    ``@room`` flag stays as it was first posted.
    """
    names = set(MENTION_RE.findall(post.text)) if "@" in post.text else set()
    held = dict(
        Mention.objects.filter(message=post).values_list(accounts.by_name("user__"), "user_id")
    )
    gone = [user_id for username, user_id in held.items() if username not in names]
    if gone:
        Mention.objects.filter(message=post, user_id__in=gone).delete()
    if names - held.keys():
        _mention(post, names - held.keys(), author=author, known=frozenset(held.values()))


def message_delete(*, user: Account, room_id: int, seq: int, moderator: bool = False) -> int | None:
    """Delete post ``seq`` (the user's own; staff: any); it stays as a tombstone with no text.

    Its text goes from every stored place: the post, its mentions and its
    reactions, and the frames of its earlier edits (made deletions too). Its
    files go too: their rows now, their stored bytes after the commit.
    ``moderator``: staff deleting from the admin, in any room.
    """
    if moderator and not permissions.is_manager(user):
        raise ChatError(ErrorCode.EDIT_DENIED, "Only staff may moderate.")

    def apply(post: Message, now: datetime) -> dict[str, Any]:
        if not permissions.is_manager(user):
            _check_own(user, post, now, action="delete")
        post.deleted, post.text, post.html = True, "", ""
        if post.files:
            post.files = ""
            chat_files.delete_attachments(Attachment.objects.filter(message=post))
        post.save(update_fields=["deleted", "text", "html", "files"])
        Reaction.objects.filter(message=post).delete()
        Mention.objects.filter(message=post).delete()
        return {}

    return _change(
        user=user,
        room_id=room_id,
        seq=seq,
        kind=ChangeKind.DELETE,
        apply=apply,
        moderator=moderator,
    )


def _scrub_edits(deletion: protocol.ChangeEvent) -> None:
    """Rewrite the stored edits of a deleted post as deletions: no text of it stays behind."""
    edits = Change.objects.filter(
        room_id=deletion.room, target=deletion.target, kind=ChangeKind.EDIT
    )
    for pk, seq in edits.values_list("pk", "seq"):
        frame = msgspec.structs.replace(deletion, seq=seq)
        Change.objects.filter(pk=pk).update(kind=ChangeKind.DELETE, frame=protocol.encode(frame))


_EMOJI_RE = re.compile(protocol.EMOJI_PATTERN)


def _check_emoji(emoji: str) -> None:
    """Refuse a reaction that is blank, too long, or holds a space or control character."""
    if len(emoji) > protocol.EMOJI_MAX_LENGTH or not _EMOJI_RE.fullmatch(emoji):
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            f"`emoji` must be an emoji or a word of at most {protocol.EMOJI_MAX_LENGTH} "
            "characters, with no space or control character.",
        )


def message_react(*, user: Account, room_id: int, seq: int, emoji: str, on: bool) -> int | None:
    """Put the user's ``emoji`` on post ``seq`` (``on``) or take it off; members see it live.

    Returns the change's seq; None if it was already so (nothing stored).
    """
    _check_emoji(emoji)

    def apply(post: Message, now: datetime) -> dict[str, Any]:
        mine = Reaction.objects.filter(message=post, user=user, emoji=emoji)
        if on:
            if mine.exists():
                raise _Unchanged
            emojis = set(Reaction.objects.filter(message=post).values_list("emoji", flat=True))
            if emoji not in emojis and len(emojis) >= conf.CHAT_REACTIONS_MAX_PER_POST:
                raise ChatError(
                    ErrorCode.BAD_REQUEST,
                    f"A post may have {conf.CHAT_REACTIONS_MAX_PER_POST} different "
                    "reactions at most.",
                )
            Reaction.objects.create(
                message=post, user=user, username=user.get_username(), emoji=emoji, created=now
            )
        elif not mine.delete()[0]:
            raise _Unchanged
        return {"reactions": selectors.reactions_of([post]).get(post.pk, [])}

    return _change(user=user, room_id=room_id, seq=seq, kind=ChangeKind.REACT, apply=apply)


def direct_post_returns(*, room_id: int, author: Account | None) -> None:
    """A post in a direct conversation puts it back in the list of each member who closed it.

    The author's own list is theirs to keep (posting needs the pane open);
    rooms are untouched: leaving a room is for good, until rejoined.
    """
    closed = RoomLeft.objects.filter(room_id=room_id, room__kind=RoomKind.DIRECT)
    if author is not None:
        closed = closed.exclude(user_id=author.pk)
    user_ids = list(closed.values_list("user_id", flat=True))
    if not user_ids:
        return
    room = Room.objects.select_related("created_by").get(pk=room_id)
    frame = events.rejoined_frame(room)
    with transaction.atomic():
        RoomLeft.objects.filter(room_id=room_id, user_id__in=user_ids).delete()
        for user_id in user_ids:
            events.publish_user_rooms_on_commit(user_id, frame)
