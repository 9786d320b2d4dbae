"""The chat socket: authenticate, parse a frame, call one service, reply.

One socket carries any number of rooms. For each joined room it remembers
the last seq it delivered, which gives every room event exactly-once, in-order
delivery: an event at or below it is a duplicate (already replayed) and is
dropped; an event above the next one means events were missed (a full
channel, another process publishing first) and the gap is filled from the
database before the event goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import redis
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.db import connection
from msgspec import UNSET

from chat import access, dbguard, eager, events, permissions, protocol, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.hub import hub

log = logging.getLogger(__name__)

# Open sockets per user id in this process (CHAT_MAX_SOCKETS_PER_USER).
_sockets_per_user: Counter[int] = Counter()


def _post(**kwargs):
    """services.message_send, then hand this thread's connection back to the pool at once."""
    try:
        return services.message_send(**kwargs)
    finally:
        connection.close()  # worker threads come and go; the connection must not stay behind


# Posts run on the loop's worker pool, not on channels' one shared database
# thread: each waits on its own commit, so posts to different rooms commit side
# by side. Order within a room still comes from the row lock on the room (seq)
# and, for delivery, from each consumer's per-room seq check.
# A database failure is SERVICE_UNAVAILABLE saying nothing was stored (the
# transaction did not commit), not SERVER_ERROR.
post_in_pool = database_sync_to_async(
    dbguard.guarded(_post, dbguard.NOT_STORED), thread_sensitive=False
)


# A gap is filled from the database this many messages at a time.
FILL_PAGE = 500


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser's (or bot's) socket at /chat/stream/."""

    rechecker: access.Rechecker | None

    async def connect(self) -> None:
        """Subscribe to the user's changes, then re-read the user; accept, or say why not."""
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.accept()
            await self._refuse_login("Log in, then open the socket again.")
            return
        if _sockets_per_user[self.user.pk] >= settings.CHAT_MAX_SOCKETS_PER_USER:
            error = ChatError(
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"You have {settings.CHAT_MAX_SOCKETS_PER_USER} sockets open; close one first.",
            )
            await self.accept()
            await self.send(text_data=protocol.error_frame(error))
            await self.close(code=protocol.CLOSE_POLICY_VIOLATION)
            return
        _sockets_per_user[self.user.pk] += 1
        self.counted = True
        session = self.scope.get("session")
        self.access = access.Credentials(
            user_id=self.user.pk,
            session=session,
            session_hash=session.get(HASH_SESSION_KEY) if session is not None else None,
        )
        try:
            await self.hub.add(events.user_group(self.user.pk), self, via=events.USERS_GROUP)
        except (redis.RedisError, OSError) as exc:
            # The socket still works: the periodic re-check stands in for live notices.
            log.warning("Could not subscribe to the user group: %s", exc)
        # Subscribed first, then read: a change committed since the handshake read the
        # user (or one whose notice is lost) is in this read.
        try:
            snapshot = await access.read_for([self])
        except dbguard.DATABASE_ERRORS as exc:
            await self.accept()
            await self.send(text_data=protocol.error_frame(dbguard.unavailable(exc)))
            await self.close(code=protocol.CLOSE_TRY_AGAIN_LATER)
            self._release()
            return
        await self.accept()
        if not await self._apply_access(snapshot):
            return
        rechecker = access.rechecker()
        rechecker.add(self)
        self.rechecker = rechecker

    async def disconnect(self, code: int) -> None:
        """Leave every joined room, with leave notices when those are on; release the socket."""
        for room_id in list(self.rooms):
            await self._leave(room_id)
        self._release()

    def _release(self) -> None:
        """Give back the socket's slot, hub groups and re-checks (at once, and only once)."""
        self.closing = True
        if self.rechecker is not None:
            self.rechecker.discard(self)
        self.hub.forget(self)
        if self.counted:
            self.counted = False
            _sockets_per_user[self.user.pk] -= 1
            if _sockets_per_user[self.user.pk] <= 0:
                del _sockets_per_user[self.user.pk]

    async def __call__(self, scope, receive, send) -> None:
        """Run the socket: its frames in this task, hub events in a drain task, one at a time.

        Events come from the process's hub (chat/hub.py), which receives each
        group event once and pushes it to every local member (``push``); the
        socket has no channel of its own. channels' own loop
        (await_many_dispatch) would create a task and an asyncio.wait per
        message; here frames are read in the socket's own task, events are
        sent by a drain task that exists only while the inbox has any, and a
        lock keeps channels' rule that handlers never overlap. An idle socket
        has no task of its own beyond the server's.

        However the socket ends (a close, a client gone mid-reply, an error),
        its slot, hub groups, re-checks and tasks are released here.
        """
        self.scope = scope
        self.hub = hub()
        self.rooms: dict[int, int] = {}  # room id -> last seq delivered
        self.inbox: list[dict[str, Any]] = []
        self.behind: dict[int, int] = {}  # room id -> newest seq not queued (inbox was full)
        self.behind_since: float | None = None
        self.drainer: asyncio.Task | None = None
        self.closer: asyncio.Task | None = None
        self.turn = asyncio.Lock()
        self.counted = False
        self.closing = False
        self.rechecker = None
        self.access_serial = 0
        self.base_send = send
        try:
            while True:
                message = await receive()
                async with self.turn:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            self._release()  # normally done by disconnect() already
            for task in (self.drainer, self.closer):
                if task is not None and task is not asyncio.current_task():
                    task.cancel()

    def push(self, event: dict[str, Any]) -> None:
        """Take an event from the hub; never blocks (the hub serves every local socket).

        The common case, the next message of a joined room on a socket with
        nothing else to do, is sent right here without a task; everything
        else (a gap to fill, a backlog, a command running, an access event)
        goes through the inbox and a drain task, in order. The inbox holds at
        most CHAT_SOCKET_QUEUE_MAX events: past that a stored message only
        moves its room's marker in ``behind`` (filled from the database when
        the socket drains) and an enter/leave notice is dropped.
        """
        if self.closing:
            return
        idle = self.drainer is None and not self.inbox and not self.turn.locked()
        if idle and event["type"] == events.EVENT_TYPE and self._send_now(event):
            return
        if len(self.inbox) < settings.CHAT_SOCKET_QUEUE_MAX or event["type"] != events.EVENT_TYPE:
            self.inbox.append(event)
        elif event["seq"] is not None:
            room_id = event["room"]
            self.behind[room_id] = max(event["seq"], self.behind.get(room_id, 0))
            if self.behind_since is None:
                self.behind_since = self.hub.loop.time()
                limit = settings.CHAT_SLOW_SOCKET_SECONDS
                self.hub.loop.call_later(limit, self._close_if_still_behind, self.behind_since)
        elif not event.get("droppable"):
            self.inbox.append(event)  # a delete notice: rare, and it must not be lost
        if self.drainer is None:
            self.drainer = self.hub.loop.create_task(self._drain())

    def _send_now(self, event: dict[str, Any]) -> bool:
        """Deliver a room event in place if it is in order; False if it needs the drain task."""
        room_id, seq = event["room"], event["seq"]
        last = self.rooms.get(room_id)
        if last is None or (seq is not None and seq <= last):
            return True  # not in the room, or already delivered: dropped
        if seq is not None and seq != last + 1:
            return False  # a gap, filled from the database by room_event
        if seq is not None:
            self.rooms[room_id] = seq
        try:
            rest = eager.start(self.base_send(event["frame"]))
        except Exception as error:
            self.drainer = self.hub.loop.create_task(self._drain(failed=error))
            return True
        if rest is not None:  # the socket's buffer is full: finish in a task
            self.drainer = self.hub.loop.create_task(self._drain(rest))
        return True

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
                            await self.dispatch(event)
                    else:  # caught up with the queue: fill what overflowed, room by room
                        room_id, seq = self.behind.popitem()
                        await self.room_sync({"room": room_id, "seq": seq})
                self.behind_since = None
        except OSError as exc:  # the client went away mid-send (uvicorn's ClientDisconnected)
            log.debug("Socket of user %s gone while sending: %r", self.user.pk, exc)
        except Exception:
            # The socket's events would stop here unseen: close it, so the client
            # reconnects and resumes with since.
            log.exception("Delivering to the socket of user %s failed", self.user.pk)
            with contextlib.suppress(Exception):
                await self.close(code=protocol.CLOSE_SERVER_ERROR)
        finally:
            self.drainer = None

    def _close_if_still_behind(self, since: float) -> None:
        if self.behind_since == since and not self.closing:
            log.info("Closing the socket of user %s: behind for too long", self.user.pk)
            self._give_up(protocol.CLOSE_TOO_SLOW)

    def abort(self) -> None:
        """The hub could not hand this socket an event (logged there): close it with 1011."""
        self._give_up(protocol.CLOSE_SERVER_ERROR)

    def _give_up(self, code: int) -> None:
        """Stop serving the socket now and close it with ``code``; the client resumes with since.

        Its queue, slot and subscriptions are released at once: a client that
        does not read may never let the close frame through (ASGI gives the
        application no way to drop the connection), and then only the bytes
        already handed to the server and the kernel stay behind.
        """
        if self.closing:
            return
        rooms = list(self.rooms)
        self._release()
        self.inbox.clear()
        self.behind.clear()
        self.rooms.clear()
        if self.drainer is not None:
            self.drainer.cancel()
        self.closer = self.hub.loop.create_task(self._close_after_leaving(rooms, code))

    async def _close_after_leaving(self, rooms: list[int], code: int) -> None:
        for room_id in rooms:
            try:
                await database_sync_to_async(services.room_leave)(user=self.user, room_id=room_id)
            except Exception:
                log.exception("Leaving room %s failed", room_id)
        async with self.turn:
            with contextlib.suppress(OSError):
                await self.close(code=code)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the message's handler, without channels' per-message connection clean-up.

        channels (4.2+) runs close_old_connections in a worker thread before
        every handler: one thread hop per room event per member, the biggest
        cost of fan-out in a profile. Every ORM call here goes through
        database_sync_to_async, which already cleans up around itself.
        """
        if message["type"] == events.EVENT_TYPE:  # the hot path: skip the name lookup
            return await self.room_event(message)
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _refuse_login(self, detail: str) -> None:
        """Say USER_HAS_TO_LOGIN, close with 4401, and stop serving the socket at once."""
        await self.send(
            text_data=protocol.error_frame(ChatError(ErrorCode.USER_HAS_TO_LOGIN, detail))
        )
        await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
        await self.disconnect(protocol.CLOSE_UNAUTHENTICATED)  # runs again when the close lands

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Enforce the frame-size limit before anything is decoded."""
        if self.closing:
            return  # given up on (too slow, or failed): commands would serve nobody
        text = message.get("text")
        if text is None:
            error = ChatError(
                ErrorCode.BAD_REQUEST, "Binary frames are not supported; send JSON text."
            )
            await self.send(text_data=protocol.error_frame(error))
            return
        if len(text) > settings.CHAT_MAX_FRAME_BYTES and (
            len(text.encode()) > settings.CHAT_MAX_FRAME_BYTES
        ):
            await self.close(code=protocol.CLOSE_FRAME_TOO_LARGE)
            return
        await self.receive(text_data=text)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Decode one command and run it; every failure becomes an error frame."""
        ref: protocol.Scalar | Any = UNSET
        try:
            frame = protocol.decode_frame(text_data or "")
            ref = protocol.peek_ref(frame)  # echoed even if the frame turns out invalid
            command = protocol.parse_command(frame)
            handler = getattr(self, f"command_{command.name}")
            await handler(command, ref)
        except ChatError as error:
            await self.send(text_data=protocol.error_frame(error, ref))
        except dbguard.DATABASE_ERRORS as exc:  # join, history, leave: nothing changed
            await self.send(text_data=protocol.error_frame(dbguard.unavailable(exc), ref))
        except redis.RedisError as exc:
            log.warning("Channel layer unavailable: %s", exc)
            down = ChatError(
                ErrorCode.SERVICE_UNAVAILABLE, "Live delivery is down; try again shortly."
            )
            await self.send(text_data=protocol.error_frame(down, ref))
        except OSError as exc:
            # The client went away while its reply was being sent (uvicorn's
            # ClientDisconnected): nobody to answer; end the socket, which releases it.
            log.debug("Socket of user %s gone while replying: %r", self.user.pk, exc)
            raise StopConsumer from None
        except Exception:
            log.exception("Command failed for user %s", getattr(self.user, "pk", None))
            failed = ChatError(ErrorCode.SERVER_ERROR, "The server could not do that; try again.")
            await self.send(text_data=protocol.error_frame(failed, ref))

    # --- commands ---------------------------------------------------------

    async def command_join(self, command: protocol.Join, ref) -> None:
        """Subscribe first, then read: whatever is stored after the read arrives live."""
        room_id = protocol.parse_room_id(command.room)
        since = None if command.since is None else protocol.parse_seq(command.since, field="since")
        rejoin = room_id in self.rooms
        if not rejoin and len(self.rooms) >= settings.CHAT_MAX_ROOMS_PER_SOCKET:
            raise ChatError(
                ErrorCode.TOO_MANY_ROOMS,
                f"A socket may join {settings.CHAT_MAX_ROOMS_PER_SOCKET} rooms; leave one first.",
            )
        group = events.room_group(room_id)
        await self.hub.add(group, self)
        try:
            result = await database_sync_to_async(services.room_join)(
                user=self.user, room_id=room_id, since=since, announce=not rejoin
            )
        except BaseException:
            if not rejoin:
                await self.hub.discard(group, self)
            raise
        self.rooms[room_id] = result.last_seq
        reply = protocol.JoinReply(
            join=room_id,
            title=result.title,
            last_seq=result.last_seq,
            staff_only=result.staff_only,
            replayed=len(result.replay),
            truncated=result.truncated,
            ref=ref,
        )
        await self.send(text_data=protocol.encode(reply))
        for text in result.replay:
            await self.send(text_data=text)

    async def command_leave(self, command: protocol.Leave, ref) -> None:
        """Unsubscribe from a joined room."""
        room_id = protocol.parse_room_id(command.room)
        if room_id not in self.rooms:
            raise ChatError(ErrorCode.ROOM_INVALID, f"This socket has not joined room {room_id}.")
        await database_sync_to_async(services.room_leave_charge)(user=self.user)
        await self._leave(room_id)
        await self.send(text_data=protocol.encode(protocol.LeaveReply(leave=room_id, ref=ref)))

    async def command_send(self, command: protocol.Send, ref) -> None:
        """Post to a joined room; the message comes back to every member, this socket included."""
        room_id = protocol.parse_room_id(command.room)
        if room_id not in self.rooms:
            raise ChatError(
                ErrorCode.ROOM_ACCESS_DENIED, f"Join room {room_id} before sending to it."
            )
        message = await post_in_pool(
            user=self.user, room_id=room_id, text=command.message, msg_type=command.msg_type
        )
        if ref is not UNSET:
            reply = protocol.SentReply(sent=room_id, seq=message.seq, ref=ref)
            await self.send(text_data=protocol.encode(reply))

    async def command_history(self, command: protocol.History, ref) -> None:
        """Reply with a page of older messages."""
        room_id = protocol.parse_room_id(command.room)
        before = (
            None if command.before is None else protocol.parse_seq(command.before, field="before")
        )
        page, has_more = await database_sync_to_async(services.room_history)(
            user=self.user, room_id=room_id, before=before, limit=command.limit
        )
        reply = protocol.HistoryReply(
            history=room_id,
            messages=[events.message_event(m) for m in page],
            has_more=has_more,
            ref=ref,
        )
        await self.send(text_data=protocol.encode(reply))

    # --- room events (from the channel layer) -----------------------------

    async def room_event(self, event: dict[str, Any]) -> None:
        """Send a room event's pre-encoded text, in seq order, exactly once."""
        room_id = event["room"]
        last = self.rooms.get(room_id)
        if last is None:
            return  # left the room (or never finished joining) while the event was queued
        seq = event["seq"]
        if seq is not None:
            if seq <= last:
                return
            if seq > last + 1:
                await self._fill_gap(room_id, last, seq - 1)
            self.rooms[room_id] = seq
        await self.base_send(event["frame"])

    # --- access re-checks (from services, after commits) --------------------

    async def room_access(self, event: dict[str, Any]) -> None:
        """A room was changed or deleted: leave it if this user may no longer be there."""
        room_id = event["room"]
        if room_id not in self.rooms:
            return
        if event["deleted"]:
            await self._expel(room_id, ErrorCode.ROOM_INVALID, f"Room {room_id} was deleted.")
        elif not permissions.can_enter(self.user, permissions.RoomAccess(**event["access"])):
            await self._expel(
                room_id, ErrorCode.ROOM_ACCESS_DENIED, f"Room {room_id} is now for staff only."
            )

    async def user_changed(self, event: dict[str, Any]) -> None:
        """This user was changed: re-read the user, session and rooms now (chat.access)."""
        try:
            snapshot = await access.read_for([self])
        except dbguard.DATABASE_ERRORS as exc:  # the periodic re-check will read it
            log.warning("Re-reading user %s after a change failed: %s", self.user.pk, exc)
            return
        await self._apply_access(snapshot)

    async def access_recheck(self, event: dict[str, Any]) -> None:
        """A periodic or post-outage re-check read this socket's access: apply it."""
        await self._apply_access(event["snapshot"])

    async def _apply_access(self, snapshot: access.Snapshot) -> bool:
        """Close if the user may no longer be here, else leave the rooms they lost; False if closed.

        A snapshot older than one already applied is ignored: its read may
        predate a change that a newer one saw.
        """
        if snapshot.serial < self.access_serial:
            return True
        self.access_serial = snapshot.serial
        reason = access.refusal(snapshot, self.access)
        if reason is not None:
            await self._refuse_login(reason)
            return False
        fresh = snapshot.users[self.access.user_id]
        if fresh is not self.user:  # keep one user object per socket: update it in place
            for field in fresh._meta.concrete_fields:
                setattr(self.user, field.attname, getattr(fresh, field.attname))
        for room_id in list(self.rooms):
            if snapshot.room_gone(room_id):
                await self._expel(room_id, ErrorCode.ROOM_INVALID, f"Room {room_id} is gone.")
            elif room_id in snapshot.rooms and not permissions.can_enter(
                self.user, snapshot.rooms[room_id]
            ):
                await self._expel(
                    room_id, ErrorCode.ROOM_ACCESS_DENIED, f"Room {room_id} is for staff only."
                )
        return True

    async def session_ended(self, event: dict[str, Any]) -> None:
        """The session this socket was opened with logged out: close it."""
        session = self.scope.get("session")
        if session is not None and session.session_key == event["session_key"]:
            await self._refuse_login("You logged out.")

    async def _expel(self, room_id: int, code: ErrorCode, detail: str) -> None:
        """Take the socket out of a room and say why (the error frame names the room)."""
        await self._leave(room_id)
        await self.send(text_data=protocol.error_frame(ChatError(code, detail, room=room_id)))

    async def room_sync(self, event: dict[str, Any]) -> None:
        """Events of this room were lost (layer outage): catch up from the database."""
        room_id, seq = event["room"], event["seq"]
        last = self.rooms.get(room_id)
        if last is not None and seq > last:
            await self._fill_gap(room_id, last, seq)
            self.rooms[room_id] = seq

    async def _fill_gap(self, room_id: int, after: int, upto: int) -> None:
        """Send the room's stored messages after ``after`` up to ``upto``, a page at a time."""
        while after < upto:
            end = min(upto, after + FILL_PAGE)
            missed = await database_sync_to_async(selectors.messages_after)(
                room_id=room_id, after=after, upto=end
            )
            for message in missed:
                await self.send(text_data=protocol.encode(events.message_event(message)))
            after = end

    async def _leave(self, room_id: int) -> None:
        del self.rooms[room_id]
        try:
            await self.hub.discard(events.room_group(room_id), self)
            await database_sync_to_async(services.room_leave)(user=self.user, room_id=room_id)
        except Exception:
            log.exception("Leaving room %s failed", room_id)
