"""The delivery engine: one socket's events, each room's in seq order, exactly once.

A ``Delivery`` belongs to one socket (its owner, chat.consumers.ChatConsumer)
and is that socket's member of the process's hub (chat/hub.py). It keeps,
for each joined room, the last seq it delivered: an event at or below it is
a duplicate (already replayed) and is dropped; an event above the next one
means events were missed (a full channel, another process publishing first)
and the gap is filled from the database, FILL_PAGE messages at a time,
before the event goes out (one read for all the process's sockets that miss
the same events at once: Hub.once).

The hot path is ``push``: the next message of a joined room, on a socket
with nothing else to do, is sent right there, without a task (chat/eager.py).
Everything else (a gap, a backlog, a command running, an event that is not
a room message) goes through the inbox, sent in order by a drain task that
exists only while the inbox has any. The inbox holds at most
CHAT_SOCKET_QUEUE_MAX events; past that a stored message only moves its
room's marker in ``behind`` (filled from the database when the socket
drains) and an enter/leave notice is dropped. A socket still behind after
CHAT_SLOW_SOCKET_SECONDS is given up on (its queue, rooms and groups
dropped at once, the owner told to close it with 4408), as is one the hub
could not hand an event (1011); a send that fails closes the socket with
1011. Either way its client reconnects and resumes with since.

``turn`` is the socket's one lock: the owner runs each command in it and the
drain task runs events in it, so handlers never overlap (channels' rule),
and an event that arrives during a join waits until the join has set the
room's seq.

A ready frame with no room or seq (``FRAME_TYPE``: the activity feed's) is
sent in place when the socket is idle, else queued in order. Events the
engine does not deliver itself (access changes, user events) go to
``owner.dispatch`` in their turn, in order with the room events. A feature whose events carry a
room seq (edits, reactions) publishes them as ``room.event`` and gets the
same ordering, duplicate drop and gap fill; ``_fill_gap`` is then the one
place that reads them back from the database. A notice without a seq
(typing) is sent as is, and dropped for a socket that is behind if it is
``droppable``; one with an ``author`` (typing) skips that user's own sockets.

The engine uses nothing of channels (its database calls go through dbguard.in_pool): it is
given the ASGI ``send`` callable itself (the ASGI spec's), and builds its
``websocket.send`` and ``websocket.close`` messages as the spec defines them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from chat import conf, dbguard, eager, events, metrics, protocol, wire
from chat.hub import Hub

log = logging.getLogger(__name__)

# A gap is filled from the database this many messages at a time.
FILL_PAGE = 500

Send = Callable[[dict[str, Any]], Awaitable[None]]  # an ASGI send

# An event that is a ready ASGI message for the socket, with no room or seq:
# {"type": FRAME_TYPE, "frame": {"type": "websocket.send", "text": ...}} (the
# activity feed's frames). Sent in place when the socket is idle, like the
# next message of a room; else queued in order with the rest.
FRAME_TYPE = "socket.frame"


_read_stream = dbguard.in_pool(events.stream_recent)


class Owner(Protocol):
    """The socket that owns a Delivery, as the engine sees it."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Handle an event that is not a room delivery (an access change), in the socket's turn."""

    def given_up(self, rooms: list[int], code: int) -> None:
        """Delivery stopped for good: release the socket, leave ``rooms``, close with ``code``."""


class Delivery:
    """One socket's hub membership, per-room positions, inbox and drain task."""

    def __init__(
        self,
        send: Send,
        owner: Owner,
        fanout: Hub,
        *,
        label: str,
        user_id: int | None = None,
        write: wire.Write | None = None,
    ) -> None:
        """Deliver through ``send`` (the socket's ASGI send) the events ``fanout`` pushes.

        ``label`` names the socket in log lines ("user 7"); notices whose
        ``author`` is ``user_id`` are not sent to it. ``write``, the server's
        frame writer if it has one (chat/wire.py), takes an event's prebuilt
        frame in place of the ASGI send when the socket is idle.
        """
        self.user_id = user_id
        self.send = send
        self.write = write
        self.owner = owner
        self.hub = fanout
        self.label = label
        self.rooms: dict[int, int] = {}  # room id -> last seq delivered
        self.inbox: list[dict[str, Any]] = []
        self.behind: dict[int, int] = {}  # room id -> newest seq not queued (inbox was full)
        self.behind_since: float | None = None
        self.drainer: asyncio.Task[None] | None = None
        self.turn = asyncio.Lock()
        self.closed = False
        # The owner's context (chat.logcontext: the socket's id and user), for the log
        # lines of the drain tasks and the slow-socket timer: the hub's task starts them.
        self.context = contextvars.copy_context()

    # --- what the owner calls ------------------------------------------------

    async def subscribe(self, group: str, *, via: str | None = None) -> None:
        """Take ``group``'s events from the hub (``via``: the shared layer group carrying it)."""
        await self.hub.add(group, self, via=via)

    async def watch(self, room_id: int) -> None:
        """Subscribe to the room; returns once live. Its events go out only after ``join``.

        Join subscribes first, then reads the room: whatever is stored after
        that read arrives live, and what was stored before is in the replay.
        """
        await self.hub.add(events.room_group(room_id), self)

    def join(self, room_id: int, seq: int) -> None:
        """Deliver the room's events after ``seq`` (the socket has everything up to it)."""
        if room_id not in self.rooms and not self.closed:
            metrics.JOINED_ROOMS.inc()
        self.rooms[room_id] = seq

    async def leave(self, room_id: int) -> None:
        """Deliver nothing more of the room (queued events included) and unsubscribe."""
        if self.rooms.pop(room_id, None) is not None and not self.closed:
            metrics.JOINED_ROOMS.dec()
        await self.hub.discard(events.room_group(room_id), self)

    def stop(self) -> None:
        """Take no more events, and leave every hub group now (at once, and idempotent)."""
        if not self.closed:
            metrics.JOINED_ROOMS.dec(len(self.rooms))  # rooms still held no longer count
        self.closed = True
        self.hub.forget(self)

    def close(self) -> None:
        """The socket ended: stop, and cancel the drain task if one runs."""
        self.stop()
        if self.drainer is not None and self.drainer is not asyncio.current_task():
            self.drainer.cancel()

    # --- what the hub calls (chat.hub.Member) --------------------------------

    def push(self, event: dict[str, Any]) -> None:
        """Take an event from the hub; never blocks (the hub serves every local socket)."""
        if self.closed:
            return
        idle = self.drainer is None and not self.inbox and not self.turn.locked()
        if idle:
            kind = event["type"]
            if kind == events.EVENT_TYPE:
                if self._send_now(event):
                    return
            elif kind == FRAME_TYPE:
                prebuilt = event.get("wire")
                if prebuilt is None and self.write is not None:
                    # Built once per event: the same event goes to every socket it is for.
                    prebuilt = event["wire"] = wire.text_frame(event["frame"]["text"])
                self._send_eagerly(event["frame"], prebuilt)
                return
        if len(self.inbox) < conf.CHAT_SOCKET_QUEUE_MAX or event["type"] != events.EVENT_TYPE:
            self.inbox.append(event)
        elif event["seq"] is not None:
            room_id = event["room"]
            self.behind[room_id] = max(event["seq"], self.behind.get(room_id, 0))
            if self.behind_since is None:
                self.behind_since = self.hub.loop.time()
                limit = conf.CHAT_SLOW_SOCKET_SECONDS
                self.hub.loop.call_later(
                    limit,
                    self._close_if_still_behind,
                    self.behind_since,
                    context=self.context.copy(),
                )
        elif not event.get("droppable"):
            self.inbox.append(event)  # a delete notice: rare, and it must not be lost
        if self.drainer is None:
            self.drainer = self.hub.loop.create_task(self._drain(), context=self.context.copy())

    @property
    def backed_up(self) -> bool:
        """True while the socket is behind: its queue is full, or rooms wait to be filled."""
        return bool(self.behind) or len(self.inbox) >= conf.CHAT_SOCKET_QUEUE_MAX

    def abort(self) -> None:
        """The hub could not hand this socket an event (logged there): close it with 1011."""
        metrics.DROPPED_FAILED.inc()
        self.give_up(protocol.CLOSE_SERVER_ERROR)

    # --- inside ----------------------------------------------------------------

    def _send_now(self, event: dict[str, Any]) -> bool:
        """Deliver a room event in place if it is in order; False if it needs the drain task."""
        room_id, seq = event["room"], event["seq"]
        last = self.rooms.get(room_id)
        if last is None or (seq is not None and seq <= last):
            return True  # not in the room, or already delivered: dropped
        if seq is None and self.user_id is not None and event.get("author") == self.user_id:
            return True  # the user's own typing notice
        if seq is not None and seq != last + 1:
            return False  # a gap, filled from the database by _room_event
        if seq is not None:
            self.rooms[room_id] = seq
        self._send_eagerly(event["frame"], event.get("wire"))
        return True

    def _send_eagerly(self, frame: dict[str, Any], prebuilt: bytes | None = None) -> None:
        """Send ``frame`` in place; a send that must wait, or fails, goes on in the drain task.

        ``prebuilt`` is the same frame's bytes (chat/wire.py): the server's
        writer puts them on the socket as they are when it can take them now.
        """
        if prebuilt is not None and self.write is not None and self.write(prebuilt):
            return
        try:
            rest = eager.start(self.send(frame))
        except Exception as error:
            self.drainer = self.hub.loop.create_task(
                self._drain(failed=error), context=self.context.copy()
            )
            return
        if rest is not None:  # the socket's buffer is full: finish in a task
            self.drainer = self.hub.loop.create_task(self._drain(rest), context=self.context.copy())

    async def _drain(
        self, first: eager.Resumed | None = None, *, failed: Exception | None = None
    ) -> None:
        """Finish ``first``, then send what the inbox and ``behind`` hold, in order."""
        try:
            if failed is not None:
                raise failed  # a send in push() failed: handled (logged, closed) below
            if first is not None:
                await first
            async with self.turn:
                while self.inbox or self.behind:
                    if self.inbox:
                        batch, self.inbox = self.inbox, []
                        for event in batch:
                            await self._run(event)
                    else:  # caught up with the queue: fill what overflowed, room by room
                        room_id, seq = self.behind.popitem()
                        await self._sync(room_id, seq)
                self.behind_since = None
        except OSError as exc:  # the client went away mid-send (uvicorn's ClientDisconnected)
            log.debug("Socket of %s gone while sending: %r", self.label, exc)
        except Exception:
            # The socket's events would stop here unseen: close it, so the client
            # reconnects and resumes with since.
            log.exception("Delivering to the socket of %s failed", self.label)
            metrics.DROPPED_FAILED.inc()
            with contextlib.suppress(Exception):
                await self.send({"type": "websocket.close", "code": protocol.CLOSE_SERVER_ERROR})
        finally:
            self.drainer = None

    async def _run(self, event: dict[str, Any]) -> None:
        """Deliver a queued event, or hand it to the owner if it is not a delivery."""
        kind = event["type"]
        if kind == events.EVENT_TYPE:
            await self._room_event(event)
        elif kind == FRAME_TYPE:
            await self.send(event["frame"])
        elif kind == events.ROOM_SYNC_TYPE:  # events were lost (layer outage): catch up
            await self._sync(event["room"], event["seq"])
        else:
            await self.owner.dispatch(event)

    async def _room_event(self, event: dict[str, Any]) -> None:
        """Send a room event's pre-encoded frame, in seq order, exactly once."""
        room_id = event["room"]
        last = self.rooms.get(room_id)
        if last is None:
            return  # left the room (or never finished joining) while the event was queued
        seq = event["seq"]
        if seq is None and self.user_id is not None and event.get("author") == self.user_id:
            return
        if seq is not None:
            if seq <= last:
                return
            if seq > last + 1:
                await self._fill_gap(room_id, last, seq - 1)
            self.rooms[room_id] = seq
        await self.send(event["frame"])

    async def _sync(self, room_id: int, seq: int) -> None:
        """Catch the room up to ``seq`` from the database (nothing if it has it all)."""
        last = self.rooms.get(room_id)
        if last is not None and seq > last:
            await self._fill_gap(room_id, last, seq)
            self.rooms[room_id] = seq

    async def _fill_gap(self, room_id: int, after: int, upto: int) -> None:
        """Send the room's stream (posts and changes) after ``after`` up to ``upto``, by pages."""
        sent = 0
        while after < upto:
            end = min(upto, after + FILL_PAGE)
            missed: list[str] = await self.hub.once(
                ("stream", room_id, after, end),
                partial(_read_stream, room_id=room_id, after=after, upto=end),
            )
            for text in missed:
                await self.send({"type": "websocket.send", "text": text})
            sent += len(missed)
            after = end
        metrics.GAP_FILLS.observe(sent)

    def _close_if_still_behind(self, since: float) -> None:
        if self.behind_since == since and not self.closed:
            log.info("Closing the socket of %s: behind for too long", self.label)
            metrics.DROPPED_SLOW.inc()
            self.give_up(protocol.CLOSE_TOO_SLOW)

    def give_up(self, code: int) -> None:
        """Stop serving the socket now; the owner releases it and closes it with ``code``.

        The queue and subscriptions go at once: a client that does not read
        may never let the close frame through (ASGI gives the application no
        way to drop the connection), and then only the bytes already handed
        to the server and the kernel stay behind.
        """
        if self.closed:
            return
        rooms = list(self.rooms)
        self.stop()
        self.inbox.clear()
        self.behind.clear()
        self.rooms.clear()
        if self.drainer is not None:
            self.drainer.cancel()
        self.owner.given_up(rooms, code)
