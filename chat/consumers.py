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
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.db import connection
from msgspec import UNSET

from chat import dbguard, eager, events, permissions, protocol, selectors, services
from chat.hub import hub
from chat.models import Room
from chat.protocol import ChatError, ErrorCode

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


def _reload_user(user_id: int):
    return get_user_model().objects.filter(pk=user_id).first()


def _staff_only_flags(room_ids: list[int]) -> dict[int, bool]:
    return dict(Room.objects.filter(pk__in=room_ids).values_list("pk", "staff_only"))


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser's (or bot's) socket at /chat/stream/."""

    async def connect(self) -> None:
        """Subscribe to the user's access re-checks, then accept; or accept only to say why not."""
        self.user = self.scope.get("user")
        self.rooms: dict[int, int] = {}  # room id -> last seq delivered
        self.counted = False
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
        try:
            # Before accept: a change to the user made once the socket is open is never missed.
            await self.hub.add(events.user_group(self.user.pk), self, via=events.USERS_GROUP)
        except (redis.RedisError, OSError) as exc:
            # The socket still works; only live access re-checks wait for the layer.
            log.warning("Could not subscribe to the user group: %s", exc)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave every joined room, with leave notices when those are on."""
        for room_id in list(self.rooms):
            await self._leave(room_id)
        if self.counted:
            self.counted = False
            _sockets_per_user[self.user.pk] -= 1
            if _sockets_per_user[self.user.pk] <= 0:
                del _sockets_per_user[self.user.pk]
            try:
                await self.hub.discard(events.user_group(self.user.pk), self)
            except Exception:
                log.exception("Leaving the user group failed")

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
        """
        self.scope = scope
        self.hub = hub()
        self.inbox: list[dict[str, Any]] = []
        self.drainer: asyncio.Task | None = None
        self.turn = asyncio.Lock()
        self.base_send = send
        try:
            while True:
                message = await receive()
                async with self.turn:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            self.hub.forget(self)  # normally a no-op: disconnect() has left every group
            if self.drainer is not None:
                self.drainer.cancel()

    def push(self, event: dict[str, Any]) -> None:
        """Take an event from the hub; never blocks (the hub serves every local socket).

        The common case, the next message of a joined room on a socket with
        nothing else to do, is sent right here without a task; everything
        else (a gap to fill, a backlog, a command running, an access event)
        goes through the inbox and a drain task, in order.
        """
        idle = self.drainer is None and not self.inbox and not self.turn.locked()
        if idle and event["type"] == events.EVENT_TYPE and self._send_now(event):
            return
        self.inbox.append(event)
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
        """Finish ``first``, then send what the inbox holds, in order (a burst under one turn)."""
        try:
            if failed is not None:
                raise failed  # a send in push() failed: handled (logged, closed) below
            if first is not None:
                await first
            async with self.turn:
                while self.inbox:
                    batch, self.inbox = self.inbox, []
                    for event in batch:
                        await self.dispatch(event)
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
        await self.send(
            text_data=protocol.error_frame(ChatError(ErrorCode.USER_HAS_TO_LOGIN, detail))
        )
        await self.close(code=protocol.CLOSE_UNAUTHENTICATED)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Enforce the frame-size limit before anything is decoded."""
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
        except (redis.RedisError, OSError) as exc:
            log.warning("Channel layer unavailable: %s", exc)
            error = ChatError(
                ErrorCode.SERVICE_UNAVAILABLE, "Live delivery is down; try again shortly."
            )
            await self.send(text_data=protocol.error_frame(error, ref))
        except Exception:
            log.exception("Command failed for user %s", getattr(self.user, "pk", None))
            error = ChatError(ErrorCode.SERVER_ERROR, "The server could not do that; try again.")
            await self.send(text_data=protocol.error_frame(error, ref))

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
        elif not permissions.can_enter(self.user, staff_only=event["staff_only"]):
            await self._expel(
                room_id, ErrorCode.ROOM_ACCESS_DENIED, f"Room {room_id} is now for staff only."
            )

    async def user_changed(self, event: dict[str, Any]) -> None:
        """This user was changed: close if they may no longer log in, else re-check each room."""
        user = await database_sync_to_async(_reload_user)(self.user.pk)
        session = self.scope.get("session")
        session_hash = session.get(HASH_SESSION_KEY) if session is not None else None
        if user is None or not user.is_active:
            await self._refuse_login("Your account was disabled or removed.")
            return
        if session_hash and session_hash != user.get_session_auth_hash():
            await self._refuse_login("Your password changed; log in again.")
            return
        self.user = user
        if self.rooms:
            flags = await database_sync_to_async(_staff_only_flags)(list(self.rooms))
            for room_id in list(self.rooms):
                if room_id not in flags:
                    await self._expel(room_id, ErrorCode.ROOM_INVALID, f"Room {room_id} is gone.")
                elif not permissions.can_enter(user, staff_only=flags[room_id]):
                    await self._expel(
                        room_id, ErrorCode.ROOM_ACCESS_DENIED, f"Room {room_id} is for staff only."
                    )

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
        missed = await database_sync_to_async(selectors.messages_after)(
            room_id=room_id, after=after, upto=upto
        )
        for message in missed:
            await self.send(text_data=protocol.encode(events.message_event(message)))

    async def _leave(self, room_id: int) -> None:
        del self.rooms[room_id]
        try:
            await self.hub.discard(events.room_group(room_id), self)
            await database_sync_to_async(services.room_leave)(user=self.user, room_id=room_id)
        except Exception:
            log.exception("Leaving room %s failed", room_id)
