"""Room events: group names, frames built from messages, and publishing.

An event is encoded once, here; every member's consumer sends the same text.
Publishing happens only after the transaction that stored the message
commits (``transaction.on_commit``), so nobody is told of a message that a
rollback then takes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from msgspec import UNSET, UnsetType

from chat import dbguard, files, metrics, protocol, redisconn, selectors, shards
from chat.errors import ChatError, ErrorCode
from chat.models import Message, Room
from chat.permissions import Account, RoomAccess

log = logging.getLogger(__name__)

EVENT_TYPE = "room.event"  # sent by each socket's chat.delivery.Delivery, in seq order
ROOM_ACCESS_TYPE = "room.access"  # ChatConsumer.room_access: re-check who may stay
USER_CHANGED_TYPE = "user.changed"  # ChatConsumer.user_changed: reload the user
SESSION_ENDED_TYPE = "session.ended"  # ChatConsumer.session_ended: logged out elsewhere
ROOM_SYNC_TYPE = "room.sync"  # chat.delivery.Delivery: catch up to a seq from the database
USER_READ_TYPE = "user.read"  # ChatConsumer.user_read: the user's read position moved
USER_MENTION_TYPE = "user.mention"  # ChatConsumer.user_mention: the user was mentioned
ROOM_ACTIVITY_TYPE = "room.activity"  # chat.activity: a room's last_seq moved (or ``@room``)
ROOM_LISTING_TYPE = "room.listing"  # chat.activity: a room was created, changed or deleted
USER_ROOMS_TYPE = "user.rooms"  # ChatConsumer.user_rooms: the user left or rejoined a room


# After a failed publish a background thread retries until the layer answers,
# so a message stored meanwhile goes out without waiting for another post:
# first after RETRY_FIRST seconds, doubling up to RETRY_MAX, for RETRY_FOR in
# all (after that the next good publish still re-syncs).
RETRY_FIRST = 0.2
RETRY_MAX = 5.0
RETRY_FOR = 3600.0
PING_GROUP = "chat.layer.ping"  # nobody subscribes: a publish that only checks the layer


class PublishFailed(Exception):
    """The channel layer could not take an event (Redis is down or unreachable).

    ``seq``: the stored message or change whose event it was (None if not told).
    """

    def __init__(self, detail: str, seq: int | None = None) -> None:
        super().__init__(detail)
        self.seq = seq


def not_announced(seq: int) -> ChatError:
    """What the sender of a post or change is told when it was stored as ``seq`` but not sent."""
    return ChatError(
        ErrorCode.SERVICE_UNAVAILABLE,
        f"Stored as seq {seq}, but live delivery is down: members get it when it is back.",
        stored_seq=seq,
    )


class _LayerState:
    """What this process knows of the layer: which shards fail, and which rooms missed events.

    Kept per shard (chat.shards): with the layer over several Redis servers,
    one of them down refuses posts only in the rooms it carries.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failing: set[int] = set()  # shards (indexes in the layer's hosts) that failed
        self.unsynced: dict[int, int] = {}  # room id -> newest seq whose event was not sent
        self.retrier: threading.Thread | None = None  # retries until the layer answers


_state = _LayerState()


def room_group(room_id: int) -> str:
    """The channel-layer group of a room's subscribed sockets."""
    return f"chat.room.{room_id}"


def user_group(user_id: int) -> str:
    """The hub group of every socket of one user (carried by USERS_GROUP on the layer)."""
    return f"chat.user.{user_id}"


# Every process subscribes once to this layer group for all user events, and its
# hub routes each to the sockets of that user: user events are rare, and one
# subscription per connected user would cost a Redis round trip per connect and
# memory per socket.
USERS_GROUP = "chat.users"


# Every process subscribes once to this layer group (chat.activity): each stored
# message's room id and seq, so a process learns of every room's new messages
# without its sockets joining the rooms. One small event per post; the posts
# from sockets go out together, one event for those of each 50 ms (_ActivityBatch).
ACTIVITY_GROUP = "chat.activity"


def message_event(
    message: Message, reactions: list[protocol.ReactionSummary] | None = None
) -> protocol.MessageEvent:
    """The frame of a stored post as it is now (a tombstone if it was deleted).

    ``reactions`` are the post's, when the caller read them (history, replay);
    a new post has none.
    """
    deleted = message.deleted
    return protocol.MessageEvent(
        msg_type=message.msg_type,
        room=message.room_id,
        username=message.username,
        message="" if deleted else message.text,
        ts=iso_utc(message.created),
        seq=message.seq,
        deleted=deleted,
        html="" if deleted else message.html,
        edited=None if message.edited is None or deleted else iso_utc(message.edited),
        reply_to=message.reply_to,
        reactions=[] if deleted or not reactions else reactions,
        # Built from the post's stored descriptors, with no query: most posts have none.
        files=files.file_infos(message.files) if message.files and not deleted else [],
    )


def post_frames(messages: list[Message]) -> list[protocol.MessageEvent]:
    """The frames of these posts as they are now, their reactions included (one query more)."""
    reactions = selectors.reactions_of(messages)
    return [message_event(m, reactions.get(m.pk)) for m in messages]


def stream_after(*, room_id: int, after: int, upto: int) -> list[str]:
    """The room's stream with ``after < seq <= upto``, oldest first, as encoded frames.

    Posts (as they are now) and changes (as they were stored) merged by seq:
    what a socket that resumes with ``since`` = ``after``, or fills a gap,
    must get to end with every post in its current state.
    """
    posts = selectors.messages_after(room_id=room_id, after=after, upto=upto)
    stream = [
        (m.seq, protocol.encode(frame)) for m, frame in zip(posts, post_frames(posts), strict=True)
    ]
    stream.extend(selectors.changes_after(room_id=room_id, after=after, upto=upto))
    stream.sort(key=lambda entry: entry[0])
    return [text for _, text in stream]


# A range of a room's stream read in the last RECENT_SECONDS is read again from
# here, not from the database: after a deploy or a crash the sockets of a room
# come back within seconds of one another, each with the same ``since``, and
# every one of them would read the same rows (docs/architecture.md, "Delivery").
RECENT_SECONDS = 2.0
RECENT_MAX_FRAMES = 20_000  # frames kept at once, all ranges together (the oldest go first)
# Oldest first: every range is kept for the same time, so the first to expire is at the front.
_recent: OrderedDict[tuple[int, int, int], tuple[float, list[str]]] = OrderedDict()
_recent_frames = 0  # the frames in _recent
_recent_lock = threading.Lock()


def stream_recent(*, room_id: int, after: int, upto: int) -> list[str]:
    """``stream_after``, or the same range as read within the last RECENT_SECONDS.

    As good as a fresh read: ``upto`` had been committed when that read ran,
    and every change since to a post in the range (an edit, a reaction, a
    deletion) is an event of its own with a seq above ``upto``, which the
    caller, subscribed before it read ``upto``, gets live. The caller has
    checked that the user may enter the room; the frames are the same for
    everyone who may.
    """
    key = (room_id, after, upto)
    now = time.monotonic()
    with _recent_lock:
        found = _recent.get(key)
        if found is not None and found[0] > now:
            return found[1]
    texts = stream_after(room_id=room_id, after=after, upto=upto)
    global _recent_frames
    with _recent_lock:
        _recent_frames -= len(_recent.pop(key, (0.0, []))[1])
        _recent[key] = (now + RECENT_SECONDS, texts)
        _recent_frames += len(texts)
        # Expired ranges go at once (a quiet server keeps nothing), then the oldest past the bound.
        while _recent and (
            _recent_frames > RECENT_MAX_FRAMES or next(iter(_recent.values()))[0] <= now
        ):
            _recent_frames -= len(_recent.popitem(last=False)[1][1])
    return texts


def forget_recent() -> None:
    """Drop every range kept by ``stream_recent`` (the tests' databases reuse room ids)."""
    global _recent_frames
    with _recent_lock:
        _recent.clear()
        _recent_frames = 0


def _creator(room: Room) -> str | None:
    """The username of who made ``room``, or None (made in the admin, or the user is gone)."""
    if room.created_by_id is None:
        return None
    creator: Account | None = room.created_by
    return None if creator is None else creator.get_username()


def _members(room: Room) -> list[str] | UnsetType:
    """A direct conversation's usernames for a frame; UNSET for a room."""
    names = selectors.member_names(rooms=[room]).get(room.pk)
    return UNSET if names is None else names


def _listing(room: Room) -> dict[str, Any]:
    """The fields a room's list entry carries, in the frames that add or restore it."""
    return {
        "title": room.title,
        "staff_only": room.staff_only,
        "created_by": _creator(room),
        "kind": room.kind,
        "members": _members(room),
    }


def rejoined_frame(room: Room) -> protocol.RoomRejoinedEvent:
    """The frame that puts ``room`` back in a user's list."""
    return protocol.RoomRejoinedEvent(room_rejoined=room.pk, **_listing(room))


def listed_frame(room: Room) -> protocol.RoomListedEvent:
    """The frame that adds or updates ``room`` in the list of a user who may enter it."""
    return protocol.RoomListedEvent(room_listed=room.pk, **_listing(room))


def mention_event(message: Message) -> protocol.MentionEvent:
    """The notification frame of a message that mentions someone."""
    return protocol.MentionEvent(
        mention=message.room_id,
        seq=message.seq,
        id=message.pk,
        username=message.username,
        message=message.text,
        ts=iso_utc(message.created),
    )


def iso_utc(when: datetime) -> str:
    """``when`` as ISO 8601 in UTC with milliseconds, e.g. 2026-11-24T18:20:16.123Z."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _send(group: str, event: dict, *, via: str | None = None) -> None:
    """Send ``event`` to ``group`` (through the shared layer group ``via``, if given)."""
    event["group"] = group  # the hub of each process hands it to that group's local sockets
    event["published"] = time.time()  # the start of its delivery latency (chat.metrics)
    async_to_sync(get_channel_layer().group_send)(via or group, event)


def _shard(group: str) -> int:
    """The shard of the layer that carries ``group`` (0 unless the layer is sharded)."""
    return shards.group_shard(get_channel_layer(), group)


def _room_shard(room_id: int) -> int:
    return _shard(room_group(room_id))


def _remember_failure(event: dict, error: Exception, shard: int) -> None:
    """Note that a shard failed, and which room's stored message was not announced."""
    with _state.lock:
        _state.failing.add(shard)
    metrics.layer_failed("publish")
    if event.get("seq") is not None:
        with _state.lock:
            room_id = event["room"]
            _state.unsynced[room_id] = max(event["seq"], _state.unsynced.get(room_id, 0))
    log.warning("Could not publish %s to room %s: %s", event["type"], event.get("room"), error)
    _retry_in_background()


def mark_failing(shard_ids: Iterable[int]) -> None:
    """The hub's probe found these shards silent: posts to their rooms are refused at once.

    Without this a post learnt that the layer was gone only from its own
    publish, after that had waited out the layer's timeouts (the post then
    stored but not announced). Now layer_usable pings the shard first (1 s)
    and refuses the post, nothing stored; the retry thread clears the mark
    once the shard answers.
    """
    with _state.lock:
        _state.failing.update(shard_ids)
    metrics.LAYER_UP.set(0)
    _retry_in_background()


def _retry_in_background() -> None:
    """Start the thread that re-syncs once the layer answers, unless it runs already."""
    with _state.lock:
        if _state.retrier is not None:
            return
        _state.retrier = threading.Thread(
            target=_retry_until_delivered, name="chat-layer-resync", daemon=True
        )
    _state.retrier.start()


def _unhealed() -> set[int]:
    """The shards that failed, or carry a room whose event was not sent (under the lock)."""
    return _state.failing | {_room_shard(room_id) for room_id in _state.unsynced}


def _retry_until_delivered() -> None:
    """Ping each failed shard with backoff until it answers; then send its rooms' re-syncs."""
    delay, deadline = RETRY_FIRST, time.monotonic() + RETRY_FOR
    while True:
        time.sleep(delay)
        with _state.lock:  # checked under the lock: a failure after this starts a new thread
            unhealed = _unhealed()
            if not unhealed or time.monotonic() > deadline:
                if unhealed:
                    log.error(
                        "Gave up re-syncing rooms %s; the next publish tries.", _state.unsynced
                    )
                _state.retrier = None
                return
        pings = shards.group_on_each_shard(get_channel_layer(), PING_GROUP)
        for shard in sorted(unhealed):
            try:
                _send(pings[shard], {"type": "layer.ping"})
            except Exception as exc:
                log.info("Layer shard %d still fails (retry in %.1f s): %s", shard, delay, exc)
                continue
            log.warning("Channel layer shard %d answers again; re-syncing its rooms", shard)
            _healed(shard)  # a failure here marks the shard failing again: the loop goes on
        with _state.lock:
            if _unhealed():
                delay = min(delay * 2, RETRY_MAX)


def _healed(shard: int) -> None:
    """A publish through ``shard`` worked: clear its failure and re-sync the rooms it carries."""
    with _state.lock:
        _state.failing.discard(shard)
        if not _state.failing:
            metrics.LAYER_UP.set(1)
    _resync_rooms(shard)


def _resync_rooms(shard: int) -> None:
    """After an outage, tell members of the shard's rooms whose events were lost to catch up."""
    with _state.lock:
        pending = {room: seq for room, seq in _state.unsynced.items() if _room_shard(room) == shard}
        for room_id in pending:
            del _state.unsynced[room_id]
    for room_id, seq in pending.items():
        event = {"type": ROOM_SYNC_TYPE, "room": room_id, "seq": seq}
        try:
            _send(room_group(room_id), event)
        except Exception as exc:
            # Tried again by the retry thread or the next publish.
            _remember_failure(event, exc, _room_shard(room_id))


def _group_send(group: str, event: dict, *, required: bool = False, via: str | None = None) -> None:
    """Send an event; on failure remember it, and raise PublishFailed if ``required``.

    Inside ``collecting`` (a socket's post on a database thread) the event is
    kept instead, for the event loop to send (``announce``).
    """
    outbox: list[_Outgoing] | None = getattr(_local, "outbox", None)
    if outbox is not None:
        outbox.append(_Outgoing(group, event, required, via))
        return
    shard = _shard(via or group)
    try:
        _send(group, event, via=via)
    except Exception as exc:
        _remember_failure(event, exc, shard)
        if required:
            raise PublishFailed(str(exc), event.get("seq")) from exc
        return
    if _state.failing or _state.unsynced:
        with _state.lock:
            unhealed = shard in _unhealed()
        if unhealed:
            _healed(shard)


# Publishing from the event loop: a socket's post runs on a database thread,
# and each event its commit publishes used to hop back to the loop and wait
# there (async_to_sync: about 130 µs of CPU each, two per post). Now the
# thread keeps them, and the loop sends them once the thread is done.


@dataclass(slots=True)
class _Outgoing:
    """An event a commit published inside ``collecting``: what ``_group_send`` was given."""

    group: str
    event: dict[str, Any]
    required: bool
    via: str | None


_local = threading.local()  # .outbox: the events kept by this thread's ``collecting``


@contextlib.contextmanager
def collecting() -> Iterator[list[_Outgoing]]:
    """Keep the events this thread's commits publish, in order, instead of sending them.

    Events of a transaction that rolls back are never published, so never kept.
    """
    outbox: list[_Outgoing] = []
    previous = getattr(_local, "outbox", None)
    _local.outbox = outbox
    try:
        yield outbox
    finally:
        _local.outbox = previous


@dataclass(slots=True)
class Collected:
    """What a function run in ``collected`` returned or raised, and the events it published."""

    result: Any
    error: BaseException | None
    outbox: list[_Outgoing]


def collected(func: Callable[..., Any]) -> Callable[..., Collected]:
    """``func``, for a database thread: its events kept (``collecting``), never lost to a raise.

    Whatever ``func`` raises is returned too: the events of what it committed
    before raising must still go out (``announce`` sends them, then raises).
    """

    def run(*args: Any, **kwargs: Any) -> Collected:
        with collecting() as outbox:
            try:
                return Collected(func(*args, **kwargs), None, outbox)
            except Exception as error:
                return Collected(None, error, outbox)

    return run


async def announce(done: Collected) -> Any:
    """Send ``done``'s events from the loop, in order; then return its result or raise its error.

    Like ``_group_send`` for each: a failure is remembered (the room is
    re-synced once the shard answers), and if a stored message's or
    change's event could not be sent, PublishFailed (its ``seq``) is raised.
    An event whose shard already failed here is not tried (it would wait
    out the same timeouts) and counts as failed.
    """
    unsent: PublishFailed | None = None
    failed: dict[int, Exception] = {}  # shard -> its error
    layer = get_channel_layer()
    for outgoing in done.outbox:
        group, event = outgoing.group, outgoing.event
        if group == ACTIVITY_GROUP and event.get("activity_room") and "mention_text" not in event:
            _activity_batch(layer).add(event["activity_room"])
            continue
        shard = _shard(outgoing.via or group)
        error = failed.get(shard)
        if error is None:
            event["group"] = group
            event["published"] = time.time()
            try:
                await layer.group_send(outgoing.via or group, event)
            except Exception as exc:
                error = failed[shard] = exc
        if error is not None:
            _remember_failure(event, error, shard)
            if outgoing.required and unsent is None:
                unsent = PublishFailed(str(error), event.get("seq"))
            continue
        if _state.failing or _state.unsynced:
            with _state.lock:
                unhealed = shard in _unhealed()
            if unhealed:  # its re-syncs publish through async_to_sync: from a thread that
                await dbguard.in_pool(_healed)(shard)  # knows this loop, as after a commit
    if done.error is not None:
        raise done.error
    if unsent is not None:
        raise unsent
    return done.result


async def catch_up_local_rooms(fanout) -> None:
    """The hub's subscription was lost for a while: its sockets catch up from the database.

    Events published while this process was not subscribed are gone, whoever
    published them; each socket's delivery engine fills its gap up to the room's
    newest seq (nothing if it has it all).
    """
    prefix = room_group(0)[:-1]
    rooms = [int(name[len(prefix) :]) for name in fanout.group_names() if name.startswith(prefix)]
    if not rooms:
        return
    newest = await dbguard.in_pool(selectors.room_last_seqs)(room_ids=rooms)
    log.warning("Catching up the sockets of rooms %s after the layer came back", sorted(newest))
    for room_id, seq in newest.items():
        fanout.deliver(
            {"type": ROOM_SYNC_TYPE, "room": room_id, "seq": seq, "group": room_group(room_id)}
        )


def failing_shards() -> set[int]:
    """The shards of the layer this process last found failing (a copy)."""
    with _state.lock:
        return set(_state.failing)


def layer_usable(room_id: int) -> bool:
    """False if the last publish to the room's shard failed and it still does not answer."""
    shard = _room_shard(room_id)
    if shard not in _state.failing:
        return True
    if not redisconn.redis_configured():
        return True
    client = redisconn.layer_client(shard, socket_connect_timeout=1, socket_timeout=1, retry=None)
    try:
        client.ping()
    except redis.RedisError:
        return False
    finally:
        client.close()
    return True


def publish_on_commit(
    room_id: int, frame: protocol.Frame, *, seq: int | None = None, droppable: bool = False
) -> None:
    """Encode ``frame`` once and send it to the room's members after the commit.

    For a stored message (``seq`` given) a failed send raises PublishFailed out
    of the transaction block (after the commit), so the poster can be told;
    the room is then re-synced on the next successful publish. A ``droppable``
    event (an enter/leave notice) may be skipped for a socket that is behind.
    """
    event = {"type": EVENT_TYPE, "room": room_id, "seq": seq, "text": protocol.encode(frame)}
    if droppable:
        event["droppable"] = True
    send = partial(_group_send, room_group(room_id), event, required=seq is not None)
    transaction.on_commit(send)


def publish_text_on_commit(room_id: int, text: str, *, seq: int) -> None:
    """Send a stored event's already encoded frame (a post's change) to the room after commit.

    Required like a post: a failed send raises PublishFailed after the commit.
    """
    event = {"type": EVENT_TYPE, "room": room_id, "seq": seq, "text": text}
    transaction.on_commit(partial(_group_send, room_group(room_id), event, required=True))


def publish_room_access_on_commit(room_id: int, access: RoomAccess, *, deleted: bool) -> None:
    """After the commit, make the room's sockets re-check that their user may stay.

    The event carries the room's ``access`` fields (a RoomAccess as a dict), or ``deleted``.
    """
    event = {
        "type": ROOM_ACCESS_TYPE,
        "room": room_id,
        "access": access.as_event(),
        "deleted": deleted,
    }
    transaction.on_commit(partial(_group_send, room_group(room_id), event))


def publish_user_changed_on_commit(user_id: int) -> None:
    """After the commit, make the user's sockets reload the user and re-check their rooms."""
    event = {"type": USER_CHANGED_TYPE, "user": user_id}
    transaction.on_commit(partial(_group_send, user_group(user_id), event, via=USERS_GROUP))


def publish_session_ended_on_commit(user_id: int, session_key: str) -> None:
    """After the commit, close the user's sockets opened with this (logged out) session."""
    event = {"type": SESSION_ENDED_TYPE, "session_key": session_key}
    transaction.on_commit(partial(_group_send, user_group(user_id), event, via=USERS_GROUP))


def notice_event(room_id: int, frame: protocol.Frame, *, author: int | None = None) -> dict:
    """A room event without seq (presence, typing): droppable for a socket that is behind.

    ``author``: a user whose own sockets skip it (chat.delivery).
    """
    event = {
        "type": EVENT_TYPE,
        "group": room_group(room_id),
        "room": room_id,
        "seq": None,
        "droppable": True,
        "text": protocol.encode(frame),
    }
    if author is not None:
        event["author"] = author
    return event


async def publish_notice(room_id: int, frame: protocol.Frame, *, author: int | None = None) -> None:
    """Send a notice without seq to the room's members on every process, now."""
    event = notice_event(room_id, frame, author=author)
    await get_channel_layer().group_send(event["group"], event)


def publish_read_on_commit(user_id: int, room_id: int, seq: int, posts: int) -> None:
    """After the commit, tell every socket of the user (every process) its read position."""
    event = {"type": USER_READ_TYPE, "room": room_id, "read_seq": seq, "read_posts": posts}
    transaction.on_commit(partial(_group_send, user_group(user_id), event, via=USERS_GROUP))


def publish_mention_on_commit(
    user_id: int, frame: protocol.MentionEvent, access: RoomAccess
) -> None:
    """After the commit, send the mention frame to every socket of the mentioned user.

    The event carries the room's access fields: each socket checks its user
    may still enter the room when it sends the frame.
    """
    event = {
        "type": USER_MENTION_TYPE,
        "text": protocol.encode(frame),
        "room_access": access.as_event(),
        "mentioned_room": frame.mention,
    }
    transaction.on_commit(partial(_group_send, user_group(user_id), event, via=USERS_GROUP))


def publish_room_mention_on_commit(
    room_id: int, frame: protocol.MentionEvent, access: RoomAccess
) -> None:
    """After the commit, tell every process of a staff ``@room``, to notify who may enter."""
    event = {
        "type": ROOM_ACTIVITY_TYPE,
        "activity_room": room_id,
        "last_seq": frame.seq,
        "mention_text": protocol.encode(frame),
        "author": frame.username,
        "room_access": access.as_event(),
    }
    transaction.on_commit(partial(_group_send, ACTIVITY_GROUP, event))


# A post's activity event (its room moved) from the event loop waits this long
# for others, and goes out with them as one event naming every room: the
# activity feed reads only which rooms moved, once a tick (chat.activity,
# CHAT_ACTIVITY_SECONDS), so this delays nothing a user sees, and under load
# it saves a publish per post and a receive per post in every process.
ACTIVITY_BATCH_SECONDS = 0.05
ACTIVITY_RETRY_SECONDS = 1.0  # after a batch failed: its rooms go with the next, this much later


class _ActivityBatch:
    """The rooms whose posts' activity events wait to go out together, on one loop.

    One batch is sent at a time: rooms added while it is out wait for the
    next. A publish to a shard that is down holds that shard's connection
    lock through its retries (about 0.3 s); a new batch every 50 ms would
    queue without end in front of everything else on the shard, /healthz's
    ping among them. A batch that failed gives its rooms back to the next,
    ACTIVITY_RETRY_SECONDS later.
    """

    def __init__(self, layer: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.rooms: set[int] = set()
        self.sending: asyncio.Task[None] | None = None

    def add(self, room_id: int) -> None:
        """Send ``room_id`` with the batch: within ACTIVITY_BATCH_SECONDS (or after the one out)."""
        self.rooms.add(room_id)
        if self.sending is None:
            self.sending = self.loop.create_task(self._send())

    async def _send(self) -> None:
        try:
            while self.rooms:
                await asyncio.sleep(ACTIVITY_BATCH_SECONDS)
                rooms, self.rooms = self.rooms, set()
                event = {
                    "type": ROOM_ACTIVITY_TYPE,
                    "activity_rooms": sorted(rooms),
                    "group": ACTIVITY_GROUP,
                    "published": time.time(),
                }
                try:
                    await self.layer.group_send(ACTIVITY_GROUP, event)
                except Exception as exc:  # not required: they go with the next batch
                    self.rooms |= rooms
                    _remember_failure(event, exc, _shard(ACTIVITY_GROUP))
                    await asyncio.sleep(ACTIVITY_RETRY_SECONDS)
        finally:
            self.sending = None


def _activity_batch(layer: Any) -> _ActivityBatch:
    """The running loop's activity batch for ``layer`` (made on first use)."""
    loop = asyncio.get_running_loop()
    batch: _ActivityBatch | None = vars(layer).get("_chat_activity_batch")
    if batch is None or batch.loop is not loop:
        batch = vars(layer)["_chat_activity_batch"] = _ActivityBatch(layer, loop)
    return batch


def publish_activity_on_commit(room_id: int, seq: int) -> None:
    """After the commit, tell every process that the room's last_seq is now ``seq``.

    Not required: if it is lost, the next post to the room carries the newer seq.
    """
    event = {"type": ROOM_ACTIVITY_TYPE, "activity_room": room_id, "last_seq": seq}
    transaction.on_commit(partial(_group_send, ACTIVITY_GROUP, event))


def publish_room_listing_on_commit(
    room_id: int,
    access: RoomAccess,
    *,
    listed: protocol.RoomListedEvent | None,
    created: bool = False,
) -> None:
    """After the commit, tell every process's sockets that a room was created, changed or deleted.

    Each process's activity tracker sends ``listed`` (None: the room was
    deleted) to its sockets whose user may enter the room (``access``), and
    ``room_removed`` to the others, except for a new room, which the others
    never knew. Both frames are encoded once, here.
    """
    event = {
        "type": ROOM_LISTING_TYPE,
        "listing_room": room_id,
        "access": access.as_event(),
        "listed": None if listed is None else protocol.encode(listed),
        "removed": protocol.encode(protocol.RoomRemovedEvent(room_removed=room_id)),
        "created": created,
    }
    transaction.on_commit(partial(_group_send, ACTIVITY_GROUP, event))


def publish_user_rooms_on_commit(
    user_id: int, frame: protocol.RoomLeftEvent | protocol.RoomRejoinedEvent
) -> None:
    """After the commit, tell every socket of the user (every process): it left or rejoined."""
    event = {"type": USER_ROOMS_TYPE, "text": protocol.encode(frame)}
    transaction.on_commit(partial(_group_send, user_group(user_id), event, via=USERS_GROUP))
