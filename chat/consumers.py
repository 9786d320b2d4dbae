"""The chat socket: authenticate, parse a frame, run one command, reply.

One socket carries any number of rooms. Delivering their events (in seq
order, exactly once, with gap fill, a bounded queue and the slow-socket
close) is the job of the socket's delivery engine, a chat.delivery.Delivery
that it owns; this module holds the commands, the socket's life
(connect, disconnect, its slot per user) and the access re-checks.

The consumer stays an AsyncWebsocketConsumer reached through channels' ASGI
routing (``as_asgi``), but relies on these parts of channels that its
documentation does not make public (chat/tests/test_delivery.py fails if
an upgrade changes them):

- ``__call__(scope, receive, send)`` is replaced, not extended: channels'
  own loop (await_many_dispatch) costs a task and an asyncio.wait per
  message, and a channel per socket that the hub makes unneeded. So
  ``channel_layer`` and ``channel_name`` are never set, which the
  AsyncWebsocketConsumer handlers tolerate while ``groups`` is empty.
- ``base_send``: set here to the ASGI send, as channels' own ``__call__``
  does; ``send``, ``accept`` and ``close`` reach the client through it.
- ``dispatch(message)`` is overridden to find the handler without channels'
  close_old_connections (a worker-thread hop per message), by the
  module-level ``get_handler_name`` channels uses for it ("a.b" -> a_b).
- ``websocket_disconnect`` calls ``disconnect(code)``, then raises
  StopConsumer, which ends the loop below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import redis
from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import HASH_SESSION_KEY
from django.db import connection
from msgspec import UNSET

from chat import (
    access,
    activity,
    conf,
    dbguard,
    events,
    logcontext,
    metrics,
    permissions,
    presence,
    protocol,
    roster,
    search,
    services,
    wire,
)
from chat.delivery import Delivery, Send
from chat.errors import ChatError, ErrorCode
from chat.hub import hub
from chat.models import Message

log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[dict[str, Any]]]  # an ASGI receive

# Open sockets per user id in this process (CHAT_MAX_SOCKETS_PER_USER).
_sockets_per_user: Counter[int] = Counter()


def _post(**kwargs: Any) -> Message:
    """services.message_send, then hand this thread's connection back to the pool at once."""
    try:
        return services.message_send(**kwargs)
    finally:
        connection.close()  # worker threads come and go; the connection must not stay behind


# Posts run on the loop's worker pool, not on channels' one shared database
# thread: each waits on its own commit, so posts to different rooms commit side
# by side. Order within a room still comes from the row lock on the room (seq)
# and, for delivery, from each socket's per-room seq check (chat.delivery).
# A database failure is SERVICE_UNAVAILABLE saying nothing was stored (the
# transaction did not commit), not SERVER_ERROR. The events the post publishes
# are sent from the loop afterwards (events.announce), not from the thread.
post_in_pool = dbguard.in_pool(events.collected(dbguard.guarded(_post, dbguard.NOT_STORED)))


def _change(service: Callable[..., int | None], **kwargs: Any) -> int | None:
    """A change service (edit, delete, react), then hand the connection back, as ``_post``."""
    try:
        return service(**kwargs)
    finally:
        connection.close()


# Changes run like posts: on the worker pool, a database failure saying nothing was stored.
change_in_pool = dbguard.in_pool(events.collected(dbguard.guarded(_change, dbguard.NOT_STORED)))


# Posts and changes whose events are being sent: kept here so that a socket task
# cancelled meanwhile (its client left) cannot drop them (asyncio keeps only weak
# references to tasks).
_announcing: set[asyncio.Future[Any]] = set()


async def announced(stored: Awaitable[events.Collected]) -> Any:
    """The result of ``stored`` (a post or change on a database thread) once its events are sent.

    Runs to the end even if the calling task is cancelled: a stored post's
    event must go out (before, the thread sent it itself). A stored post or
    change whose event could not be sent is SERVICE_UNAVAILABLE with its
    ``stored_seq``.
    """
    done = asyncio.ensure_future(_announce(stored))
    _announcing.add(done)
    done.add_done_callback(_announced)
    return await asyncio.shield(done)


async def _announce(stored: Awaitable[events.Collected]) -> Any:
    try:
        return await events.announce(await stored)
    except events.PublishFailed as failed:
        if failed.seq is None:
            raise
        raise events.not_announced(failed.seq) from None


def _announced(done: asyncio.Future[Any]) -> None:
    _announcing.discard(done)
    if not done.cancelled():
        done.exception()  # retrieved: a caller that was cancelled no longer awaits it


def _room_for_logs(command: protocol.Command) -> int | None:
    """The command's room id for log lines, if it names a valid one (never what else it sent)."""
    room = getattr(command, "room", None)
    if room is None:
        return None
    try:
        return protocol.parse_room_id(room)
    except ChatError:
        return None


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser's (or bot's) socket at /chat/stream/."""

    user: permissions.Account  # set by connect() once the scope's user is known to be authenticated
    rechecker: access.Rechecker | None
    delivery: Delivery

    async def connect(self) -> None:
        """Subscribe to the user's changes, then re-read the user; accept, or say why not."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            metrics.socket_refused("login")
            await self.accept()
            await self._refuse_login("Log in, then open the socket again.")
            return
        self.user = user
        if _sockets_per_user[self.user.pk] >= conf.CHAT_MAX_SOCKETS_PER_USER:
            error = ChatError(
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"You have {conf.CHAT_MAX_SOCKETS_PER_USER} sockets open; close one first.",
            )
            metrics.socket_refused("too_many_sockets")
            await self.accept()
            await self.send(text_data=protocol.error_frame(error))
            await self.close(code=protocol.CLOSE_POLICY_VIOLATION)
            return
        _sockets_per_user[self.user.pk] += 1
        self.counted = True
        metrics.socket_opened()
        session = self.scope.get("session")
        self.access = access.Credentials(
            user_id=self.user.pk,
            session=session,
            session_hash=session.get(HASH_SESSION_KEY) if session is not None else None,
        )
        try:
            await self.delivery.subscribe(events.user_group(self.user.pk), via=events.USERS_GROUP)
        except (redis.RedisError, OSError) as exc:
            # The socket still works: the periodic re-check stands in for live notices.
            log.warning("Could not subscribe to the user group: %s", exc)
        # Subscribed first, then read: a change committed since the handshake read the
        # user (or one whose notice is lost) is in this read.
        try:
            snapshot = await access.read_for([self])
        except dbguard.DATABASE_ERRORS as exc:
            metrics.socket_refused("database")
            await self.accept()
            await self.send(text_data=protocol.error_frame(dbguard.unavailable(exc)))
            await self.close(code=protocol.CLOSE_TRY_AGAIN_LATER)
            self._release()
            return
        await self.accept()
        if not await self._apply_access(snapshot):
            metrics.socket_refused("login")  # the user or session changed since the handshake
            return
        log.info("Socket opened")
        metrics.SOCKET_CONNECTS.inc()
        rechecker = access.rechecker()
        rechecker.add(self)
        self.rechecker = rechecker
        await self._watch_activity()

    async def disconnect(self, code: int) -> None:
        """Leave every joined room (chat.presence tells the rooms when the person is gone)."""
        log.info("Socket closed (code %s)", code)
        for room_id in list(self.rooms):
            await self._leave(room_id)
        self._release()

    def _release(self) -> None:
        """Give back the socket's slot, hub groups and re-checks (at once, and only once)."""
        for room_id in self.rooms:
            self.roster.leave(room_id, self, self.user.pk)
        self.delivery.stop()
        if self.activity is not None:
            self.activity.discard(self)
        if self.rechecker is not None:
            self.rechecker.discard(self)
        if self.counted:
            self.counted = False
            metrics.socket_closed()
            _sockets_per_user[self.user.pk] -= 1
            if _sockets_per_user[self.user.pk] <= 0:
                del _sockets_per_user[self.user.pk]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Run the socket: its frames in this task, one at a time with the engine's events.

        Events come from the process's hub (chat/hub.py) to this socket's
        delivery engine (chat/delivery.py), which sends them; the socket has
        no channel of its own. channels' own loop (await_many_dispatch) would
        create a task and an asyncio.wait per message; here frames are read
        in the socket's own task and run in the engine's ``turn``, so a
        command and the engine's events never overlap (channels' rule). An
        idle socket has no task of its own beyond the server's.

        However the socket ends (a close, a client gone mid-reply, an error),
        its slot, hub groups, re-checks and tasks are released here.
        """
        # This task's log lines (and its delivery engine's, which copies the
        # context) carry the socket's id and user; no other socket's.
        user = scope.get("user")
        user_id = getattr(user, "pk", None)
        with logcontext.bound(socket_id=logcontext.new_id(), user_id=user_id, room=None):
            await self._serve(scope, receive, send, user_id)

    async def _serve(
        self, scope: dict[str, Any], receive: Receive, send: Send, user_id: Any
    ) -> None:
        """The socket's life, as ``__call__`` describes it."""
        self.scope = scope
        self.base_send = send
        self.delivery = Delivery(
            send, self, hub(), label=f"user {user_id}", user_id=user_id, write=wire.writer(scope)
        )
        self.roster = roster.roster(self.delivery.hub)
        self.notices = presence.notices(self.roster)
        self.active = True  # the client has not said it is idle
        self.closer: asyncio.Task[None] | None = None
        self.counted = False
        self.rechecker = None
        self.activity: activity.Tracker | None = None
        self.access_serial = 0
        turn = self.delivery.turn
        try:
            while True:
                message = await receive()
                async with turn:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            self._release()  # normally done by disconnect() already
            self.delivery.close()
            if self.closer is not None and self.closer is not asyncio.current_task():
                self.closer.cancel()

    @property
    def rooms(self) -> dict[int, int]:
        """The joined rooms, each with the last seq delivered (the engine keeps them)."""
        return self.delivery.rooms

    def push(self, event: dict[str, Any]) -> None:
        """Queue an event for this socket (a re-check's answer, chat.access) in the engine."""
        self.delivery.push(event)

    @property
    def backed_up(self) -> bool:
        """True while the engine holds a full queue for this socket (chat.activity waits)."""
        return self.delivery.backed_up

    def given_up(self, rooms: list[int], code: int) -> None:
        """The engine stopped serving the socket (too slow, failed): release it, leave, close.

        Called by the engine (chat.delivery.Owner) after it dropped its queue
        and subscriptions; the client resumes with since.
        """
        for room_id in rooms:
            self.roster.leave(room_id, self, self.user.pk)
        self._release()
        loop = asyncio.get_running_loop()
        self.closer = loop.create_task(self._close(code))

    async def _close(self, code: int) -> None:
        """Close with ``code`` in the socket's turn (after any command that is running)."""
        async with self.delivery.turn:
            with contextlib.suppress(OSError):
                await self.close(code=code)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the message's handler, without channels' per-message connection clean-up.

        channels (4.2+) runs close_old_connections in a worker thread before
        every handler: a thread hop per frame and per access event (per room
        event per member, the biggest cost of fan-out, when those came through
        here). Every ORM call here goes through dbguard.in_pool, which
        already cleans up around itself.
        """
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
        if self.delivery.closed:
            return  # given up on (too slow, or failed): commands would serve nobody
        text = message.get("text")
        if text is None:
            error = ChatError(
                ErrorCode.BAD_REQUEST, "Binary frames are not supported; send JSON text."
            )
            await self.send(text_data=protocol.error_frame(error))
            return
        if len(text) > conf.CHAT_MAX_FRAME_BYTES and (
            len(text.encode()) > conf.CHAT_MAX_FRAME_BYTES
        ):
            await self.close(code=protocol.CLOSE_FRAME_TOO_LARGE)
            return
        await self.receive(text_data=text)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Decode one command and run it; every failure becomes an error frame."""
        with logcontext.bound(room=None):  # the command's room, once parsed (_run)
            await self._run(text_data or "")

    async def _run(self, text_data: str) -> None:
        """``receive``'s work: log lines carry the command's room while it runs."""
        ref: protocol.Scalar | Any = UNSET
        name = "frame"
        try:
            frame = protocol.decode_frame(text_data)
            ref = protocol.peek_ref(frame)  # echoed even if the frame turns out invalid
            command = protocol.parse_command(frame)
            name = command.name
            logcontext.room.set(_room_for_logs(command))
            handler = getattr(self, f"command_{command.name}")
            await handler(command, ref)
        except ChatError as error:
            # The code only: a detail may quote what the client sent. DEBUG: a client can
            # send refused frames as fast as it likes.
            log.debug("The %s command was refused: %s", name, error.code)
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

    async def command_join(self, command: protocol.Join, ref: protocol.Scalar | Any) -> None:
        """Subscribe first, then read: whatever is stored after the read arrives live."""
        room_id = protocol.parse_room_id(command.room)
        since = None if command.since is None else protocol.parse_seq(command.since, field="since")
        rejoin = room_id in self.rooms
        if not rejoin and len(self.rooms) >= conf.CHAT_MAX_ROOMS_PER_SOCKET:
            raise ChatError(
                ErrorCode.TOO_MANY_ROOMS,
                f"A socket may join {conf.CHAT_MAX_ROOMS_PER_SOCKET} rooms; leave one first.",
            )
        await self.delivery.watch(room_id)
        try:
            result = await dbguard.in_pool(services.room_join)(
                user=self.user, room_id=room_id, since=since
            )
        except BaseException:
            if not rejoin:
                await self.delivery.leave(room_id)
            raise
        self.delivery.join(room_id, result.last_seq)
        reply = protocol.JoinReply(
            join=room_id,
            title=result.title,
            last_seq=result.last_seq,
            staff_only=result.staff_only,
            kind=result.kind,
            members=UNSET if result.members is None else result.members,
            replayed=len(result.replay),
            truncated=result.truncated,
            read_seq=result.read_seq,
            posts=result.posts,
            read_posts=result.read_posts,
            ref=ref,
        )
        await self.send(text_data=protocol.encode(reply))
        if since is not None:
            metrics.REPLAYS.observe(len(result.replay))
        for text in result.replay:
            await self.send(text_data=text)
        first = not self.roster.holds(room_id, self.user.pk)  # else no news: a tab more
        members = await self.roster.enter(
            room_id,
            self,
            user_id=self.user.pk,
            username=self.user.get_username(),
            active=self.active,
        )
        present = protocol.PresenceEvent(presence=room_id, members=members, full=True)
        await self.send(text_data=protocol.encode(present))
        log.debug("Joined the room")  # one per room per socket: DEBUG, not INFO
        if first:
            await self.notices.entered(room_id, self.user.pk, self.user.get_username())

    async def command_leave(self, command: protocol.Leave, ref: protocol.Scalar | Any) -> None:
        """Unsubscribe from a joined room."""
        room_id = protocol.parse_room_id(command.room)
        if room_id not in self.rooms:
            raise ChatError(ErrorCode.ROOM_INVALID, f"This socket has not joined room {room_id}.")
        await dbguard.in_pool(services.room_leave_charge)(user=self.user)
        await self._leave(room_id)
        await self.send(text_data=protocol.encode(protocol.LeaveReply(leave=room_id, ref=ref)))

    async def command_send(self, command: protocol.Send, ref: protocol.Scalar | Any) -> None:
        """Post to a joined room; the message comes back to every member, this socket included."""
        room_id = protocol.parse_room_id(command.room)
        if room_id not in self.rooms:
            raise ChatError(
                ErrorCode.ROOM_ACCESS_DENIED, f"Join room {room_id} before sending to it."
            )
        message: Message = await announced(
            post_in_pool(
                user=self.user,
                room_id=room_id,
                text=command.message,
                msg_type=command.msg_type,
                reply_to=command.reply_to,
                files=command.files,
            )
        )
        if ref is not UNSET:
            reply = protocol.SentReply(sent=room_id, seq=message.seq, ref=ref)
            await self.send(text_data=protocol.encode(reply))

    async def _changed(self, room_id: int, seq: int | None, ref: protocol.Scalar | Any) -> None:
        """With a ``ref``, say which seq the change took (absent: nothing changed)."""
        if ref is not UNSET:
            reply = protocol.ChangedReply(changed=room_id, seq=seq, ref=ref)
            await self.send(text_data=protocol.encode(reply))

    async def command_edit(self, command: protocol.Edit, ref: protocol.Scalar | Any) -> None:
        """Replace the text of one of the user's posts; every member gets the change."""
        room_id = protocol.parse_room_id(command.room)
        seq = protocol.parse_seq(command.seq, field="seq")
        changed = await announced(
            change_in_pool(
                services.message_edit,
                user=self.user,
                room_id=room_id,
                seq=seq,
                text=command.message,
            )
        )
        await self._changed(room_id, changed, ref)

    async def command_delete(self, command: protocol.Delete, ref: protocol.Scalar | Any) -> None:
        """Delete a post (the user's own; staff: any): a tombstone for every member."""
        room_id = protocol.parse_room_id(command.room)
        seq = protocol.parse_seq(command.seq, field="seq")
        changed = await announced(
            change_in_pool(services.message_delete, user=self.user, room_id=room_id, seq=seq)
        )
        await self._changed(room_id, changed, ref)

    async def command_react(self, command: protocol.React, ref: protocol.Scalar | Any) -> None:
        """Put an emoji on a post or take it off; every member gets the post's reactions."""
        room_id = protocol.parse_room_id(command.room)
        seq = protocol.parse_seq(command.seq, field="seq")
        changed = await announced(
            change_in_pool(
                services.message_react,
                user=self.user,
                room_id=room_id,
                seq=seq,
                emoji=command.emoji,
                on=command.on,
            )
        )
        await self._changed(room_id, changed, ref)

    async def command_history(self, command: protocol.History, ref: protocol.Scalar | Any) -> None:
        """Reply with a page of older messages."""
        room_id = protocol.parse_room_id(command.room)
        before = (
            None if command.before is None else protocol.parse_seq(command.before, field="before")
        )
        page, has_more = await dbguard.in_pool(services.room_history)(
            user=self.user, room_id=room_id, before=before, limit=command.limit
        )
        reply = protocol.HistoryReply(
            history=room_id,
            messages=page,
            has_more=has_more,
            ref=ref,
        )
        await self.send(text_data=protocol.encode(reply))

    async def command_search(self, command: protocol.Search, ref: protocol.Scalar | Any) -> None:
        """Reply with a page of full-text search results over the rooms the user may enter."""
        room_id = None if command.room is None else protocol.parse_room_id(command.room)
        page = await dbguard.in_pool(search.search)(
            user=self.user,
            query=command.query,
            room=room_id,
            author=command.author,
            after=command.after,
            before=command.before,
            cursor=command.cursor,
            limit=command.limit,
        )
        reply = protocol.SearchReply(search=page.results, next=page.next, ref=ref)
        await self.send(text_data=protocol.encode(reply))

    async def command_typing(self, command: protocol.Typing, ref: protocol.Scalar | Any) -> None:
        """Tell the room's other members, on every process, that this user is typing."""
        room_id = protocol.parse_room_id(command.room)
        if room_id not in self.rooms:
            raise ChatError(
                ErrorCode.ROOM_ACCESS_DENIED, f"Join room {room_id} before typing in it."
            )
        await sync_to_async(services.typing_charge, thread_sensitive=False)(user=self.user)
        frame = protocol.TypingEvent(
            typing=room_id,
            username=self.user.get_username(),
            expires_in=conf.CHAT_TYPING_EXPIRES_SECONDS,
        )
        await events.publish_notice(room_id, frame, author=self.user.pk)

    async def command_presence(
        self, command: protocol.SetPresence, ref: protocol.Scalar | Any
    ) -> None:
        """The client is active or idle: its user's presence in this socket's rooms follows."""
        self.active = command.state == "active"
        self.roster.set_active(self, self.user.pk, self.rooms, self.active)

    async def command_ping(self, command: protocol.Ping, ref: protocol.Scalar | Any) -> None:
        """Answer a client's heartbeat at once: no database, no budget (it is not a message)."""
        await self.send(text_data=protocol.encode(protocol.PongReply(pong=True, ref=ref)))

    async def command_read(self, command: protocol.Read, ref: protocol.Scalar | Any) -> None:
        """Store a read position; every socket of the user (this one too) gets the ``read`` frame.

        A ``ref`` is echoed on this socket's own frame, sent here at once; the
        user event then brings the same position to the others (and again here).
        """
        room_id = protocol.parse_room_id(command.room)
        seq = protocol.parse_seq(command.seq, field="seq")
        stored, posts = await dbguard.in_pool(services.read_mark)(
            user=self.user, room_id=room_id, seq=seq
        )
        if ref is not UNSET:
            frame = protocol.ReadEvent(read=room_id, seq=stored, posts=posts, ref=ref)
            await self.send(text_data=protocol.encode(frame))

    # --- awareness (read positions, mentions, activity; chat.activity) ------

    async def _watch_activity(self) -> None:
        """Feed this socket the activity frames (a failure is logged: the socket still works)."""
        tracker = activity.tracker(self.delivery.hub)
        try:
            await tracker.add(self)
        except (redis.RedisError, OSError) as exc:
            log.warning("Could not subscribe to the activity feed: %s", exc)
            tracker.discard(self)
            return
        self.activity = tracker

    async def user_read(self, event: dict[str, Any]) -> None:
        """The user's read position moved (any socket, any process): say so."""
        room_id = event["room"]
        if self.activity is not None:
            self.activity.touched(self.user.pk, room_id)
        await self.send(
            text_data=protocol.encode(
                protocol.ReadEvent(read=room_id, seq=event["read_seq"], posts=event["read_posts"])
            )
        )

    async def user_mention(self, event: dict[str, Any]) -> None:
        """The user was mentioned: notify, if the user may still enter the room."""
        room_access = permissions.RoomAccess.from_event(event["room_access"])
        if not permissions.can_enter(self.user, room_access):
            return
        if self.activity is not None:
            self.activity.touched(self.user.pk, event["mentioned_room"])
        await self.send(text_data=event["text"])

    async def user_rooms(self, event: dict[str, Any]) -> None:
        """The user left or rejoined a room (chat.rooms), on any device: say so."""
        await self.send(text_data=event["text"])

    # --- access re-checks (from services, after commits) --------------------

    async def room_access(self, event: dict[str, Any]) -> None:
        """A room was changed or deleted: leave it if this user may no longer be there."""
        room_id = event["room"]
        if room_id not in self.rooms:
            return
        if event["deleted"]:
            await self._expel(room_id, ErrorCode.ROOM_INVALID, f"Room {room_id} was deleted.")
        else:
            room = permissions.RoomAccess.from_event(event["access"])
            if not permissions.can_enter(self.user, room):
                detail = permissions.refused_detail(room_id, room.kind)
                await self._expel(room_id, ErrorCode.ROOM_ACCESS_DENIED, detail)

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
                detail = permissions.refused_detail(room_id, snapshot.rooms[room_id].kind)
                await self._expel(room_id, ErrorCode.ROOM_ACCESS_DENIED, detail)
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

    async def _leave(self, room_id: int) -> None:
        """Stop the room's delivery (a failure is logged, not raised); the roster tells presence."""
        self.roster.leave(room_id, self, self.user.pk)
        try:
            await self.delivery.leave(room_id)
        except Exception:
            log.exception("Leaving room %s failed", room_id)
