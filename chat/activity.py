"""The activity feed: each socket learns, once a second at most, which of its rooms moved.

Every process subscribes once to events.ACTIVITY_GROUP, which carries each
stored message's room id and seq (one small event per post, whoever posted
it; a process sends its sockets' posts of each 50 ms as one event listing their
rooms). The process's ``Tracker`` notes the rooms that changed in a dict, an
O(1) update per post; nothing runs per socket then. Once a second (if
anything changed) one task per process reads the changed rooms' access
fields and newest seqs (one query), recounts unread mentions for the users
that need it (two queries), and pushes each local socket an ``activity``
frame listing the changed rooms its user may enter now
(permissions.can_enter, so a room made staff-only or a demoted user stops
showing at once). Frames with the same content are encoded once per tick.

Memory: per process, the set of sockets and each local user's nonzero
unread mention counts per room; per socket, nothing. The recount runs for a
user when it is first seen, and after it is mentioned or reads (its sockets
here call ``touched``); a staff ``@room`` recounts every local user.
Deleting a message does not recount (the next recount drops it).

The same subscription carries the live room list (chat.rooms): a room
created, changed or deleted reaches each local socket at once, not on the
tick, as ``room_listed`` if its user may enter the room, else
``room_removed``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from typing import Any, Protocol

from chat import conf, dbguard, events, permissions, protocol, selectors
from chat.delivery import FRAME_TYPE
from chat.hub import Hub

log = logging.getLogger(__name__)


class Watcher(Protocol):
    """A local socket, as the tracker sees it."""

    user: permissions.Account

    @property
    def backed_up(self) -> bool:
        """True while the socket's queue is full (it stopped reading, or reads slowly)."""

    def push(self, event: dict[str, Any]) -> None:
        """Queue an event for the socket, in order with its other events."""


class Tracker:
    """One process's (one loop's) activity state and its once-a-second timer."""

    def __init__(self, fanout: Hub) -> None:
        self.hub = fanout
        self.sockets: set[Watcher] = set()
        self.changed: set[int] = set()  # rooms with new messages since the last tick
        self.everyone: set[int] = set()  # rooms with a new ``@room`` since the last tick
        self.dirty: dict[int, set[int]] = {}  # user id -> rooms whose mention count may differ
        self.counts: dict[int, Counter[int]] = {}  # local user id -> room -> unread mentions
        # A backed-up socket's rooms whose activity it has not been sent yet: it gets them
        # (as they are then) on the first tick after it drains, not a frame per tick queued.
        self.owed: dict[Watcher, set[int]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.running: asyncio.Task[None] | None = None

    async def add(self, socket: Watcher) -> None:
        """Feed ``socket`` from the next tick on; subscribes the process on first use."""
        self.sockets.add(socket)
        await self.hub.add(events.ACTIVITY_GROUP, self)
        if self.timer is None:
            self.timer = self.hub.loop.call_later(conf.CHAT_ACTIVITY_SECONDS, self._on_timer)

    def discard(self, socket: Watcher) -> None:
        """Stop feeding ``socket``; the last one out stops the timer and the subscription."""
        self.sockets.discard(socket)
        self.owed.pop(socket, None)
        if not self.sockets:
            self.hub.forget(self)
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self.counts.clear()

    def touched(self, user_id: int, room_id: int) -> None:
        """The user's mention count in the room may have changed (a mention, a read)."""
        self.dirty.setdefault(user_id, set()).add(room_id)

    # --- what the hub calls (chat.hub.Member) --------------------------------

    def push(self, event: dict[str, Any]) -> None:
        """Note the room's new seq; a staff ``@room`` also notifies the sockets that may enter."""
        if event["type"] == events.ROOM_LISTING_TYPE:
            self._listing(event)
            return
        batch = event.get("activity_rooms")
        if batch is not None:  # posts' rooms, sent together (events.ACTIVITY_BATCH_SECONDS)
            self.changed.update(batch)
            return
        room_id = event["activity_room"]
        self.changed.add(room_id)
        text = event.get("mention_text")
        if text is None:
            return
        self.everyone.add(room_id)
        access = permissions.RoomAccess.from_event(event["room_access"])
        notice = {"type": FRAME_TYPE, "frame": {"type": "websocket.send", "text": text}}
        for socket in tuple(self.sockets):
            user = socket.user
            if user.get_username() != event["author"] and permissions.can_enter(user, access):
                socket.push(notice)

    def abort(self) -> None:
        """Never raised into: the tracker's push does not fail."""

    def _listing(self, event: dict[str, Any]) -> None:
        """A room was created, changed or deleted: each socket's room list follows, at once.

        A socket whose user may enter the room gets its ``room_listed`` frame;
        any other gets ``room_removed`` (it may have seen the room before the
        change), except for a new room. Decided per access class; the two
        frames were encoded once by the publisher.
        """
        access = permissions.RoomAccess.from_event(event["access"])
        listed = event["listed"]
        frames = {
            True: None if listed is None else _frame_event(listed),
            False: None if event["created"] else _frame_event(event["removed"]),
        }
        if listed is None:  # deleted: gone for everyone who could see it; the others never did
            frames = {True: _frame_event(event["removed"]), False: None}
        decided: dict[tuple[bool, bool], bool] = {}
        by_class = permissions.class_decides(access)
        for socket in tuple(self.sockets):
            if not by_class:  # a direct conversation: its members, user by user
                may = permissions.can_enter(socket.user, access)
            else:
                klass = permissions.access_class(socket.user)
                if klass not in decided:
                    decided[klass] = permissions.can_enter(socket.user, access)
                may = decided[klass]
            frame = frames[may]
            if frame is not None:
                socket.push(frame)

    # --- the tick ---------------------------------------------------------------

    def _on_timer(self) -> None:
        self.timer = self.hub.loop.call_later(conf.CHAT_ACTIVITY_SECONDS, self._on_timer)
        pending = self.changed or self.dirty or self.everyone or self.owed
        if pending and (self.running is None or self.running.done()):
            self.running = self.hub.loop.create_task(self._tick())

    async def _tick(self) -> None:
        changed, self.changed = self.changed, set()
        everyone, self.everyone = self.everyone, set()
        dirty, self.dirty = self.dirty, {}
        try:
            await self._send(changed, everyone, dirty)
        except Exception:
            log.exception("The activity tick failed; its rooms are tried again next tick")
            self.changed |= changed
            self.everyone |= everyone
            for user_id, rooms in dirty.items():
                self.dirty.setdefault(user_id, set()).update(rooms)

    async def _send(
        self, changed: set[int], everyone: set[int], dirty: dict[int, set[int]]
    ) -> None:
        """Build and push this tick's frames: one query for the rooms, two for recounts."""
        sockets = list(self.sockets)
        users = {socket.user.pk for socket in sockets}
        recount = {u for u in users if u not in self.counts or u in dirty}
        if everyone:
            recount = users
        rooms = changed.union(*dirty.values(), *self.owed.values())
        found = await dbguard.in_pool(selectors.rooms_now)(room_ids=rooms)
        if recount:
            fresh = await dbguard.in_pool(selectors.unread_mentions)(user_ids=recount)
            self.counts.update(fresh)
        for user_id in [u for u in self.counts if u not in users]:
            del self.counts[user_id]
        ordered = sorted(found.items())
        # Direct conversations are decided per user (their members); the rest once per class.
        direct = [
            (room_id, access, last_seq, posts)
            for room_id, (access, last_seq, posts) in ordered
            if room_id in changed and not permissions.class_decides(access)
        ]
        # The changed rooms each access class may enter, decided once per class
        # (permissions.access_class): per socket, only its user's mentions (and
        # the conversations it is a member of) differ.
        visible: dict[tuple[bool, bool], list[tuple[int, int, int]]] = {}
        frames: dict[Any, dict[str, Any] | None] = {}
        for socket in sockets:
            if socket not in self.sockets:
                continue  # closed during the reads
            user = socket.user
            mine = self.counts.get(user.pk)
            own = dirty.get(user.pk)
            entries: list[tuple[int, int, int]] | None
            if own:  # this user read or was mentioned: their own rooms, checked one by one
                key: Any = (user.pk, tuple(sorted(own)))
                entries = [
                    (room_id, last_seq, posts)
                    for room_id, (access, last_seq, posts) in ordered
                    if (room_id in changed or room_id in own)
                    and permissions.can_enter(user, access)
                ]
            else:
                klass = permissions.access_class(user)
                entries = visible.get(klass)
                if entries is None:
                    entries = visible[klass] = [
                        (room_id, last_seq, posts)
                        for room_id, (access, last_seq, posts) in ordered
                        if room_id in changed
                        and permissions.class_decides(access)
                        and permissions.can_enter(user, access)
                    ]
                counted = tuple(sorted((r, n) for r, n in mine.items() if n)) if mine else ()
                key = (klass, counted)
                conversations = tuple(
                    (room_id, last_seq, posts)
                    for room_id, access, last_seq, posts in direct
                    if permissions.can_enter(user, access)
                )
                if conversations:
                    entries = sorted([*entries, *conversations])
                    key = (klass, counted, conversations)
            owed = self.owed.pop(socket, None)
            if socket.backed_up:  # no frame into a full queue: the rooms are owed instead
                self.owed[socket] = (owed or set()).union(room_id for room_id, _, _ in entries)
                continue
            if owed:  # drained since: the owed rooms as they are now, with this tick's
                entries = sorted(
                    {
                        **{
                            room_id: (room_id, last_seq, posts)
                            for room_id, (access, last_seq, posts) in ordered
                            if room_id in owed and permissions.can_enter(user, access)
                        },
                        **{entry[0]: entry for entry in entries},
                    }.values()
                )
                key = (user.pk, "owed", tuple(entries))
            if key in frames:
                event = frames[key]
            else:
                event = frames[key] = self._frame(entries, mine)
            if event is not None:
                socket.push(event)

    @staticmethod
    def _frame(
        rooms: list[tuple[int, int, int]], mine: Counter[int] | None
    ) -> dict[str, Any] | None:
        """The activity event for these (room, last_seq, posts) and mention counts (None: none)."""
        if not rooms:
            return None
        counts = mine or Counter()
        frame = protocol.ActivityEvent(
            activity=[
                protocol.RoomActivity(room=r, last_seq=s, posts=p, mentions=counts[r])
                for r, s, p in rooms
            ]
        )
        text = protocol.encode(frame)
        return {"type": FRAME_TYPE, "frame": {"type": "websocket.send", "text": text}}


def _frame_event(text: str) -> dict[str, Any]:
    """The event that makes a socket's delivery engine send ``text`` as it is."""
    return {"type": FRAME_TYPE, "frame": {"type": "websocket.send", "text": text}}


_trackers: weakref.WeakKeyDictionary[Hub, Tracker] = weakref.WeakKeyDictionary()


def tracker(fanout: Hub) -> Tracker:
    """The activity tracker of ``fanout``'s process and loop (made on first use)."""
    found = _trackers.get(fanout)
    if found is None:
        found = _trackers[fanout] = Tracker(fanout)
    return found
