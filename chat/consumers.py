"""The chat socket: authenticate, parse a frame, call one service, reply.

One socket carries any number of rooms. For each joined room it remembers
the last seq it delivered, which gives every room event exactly-once, in-order
delivery: an event at or below it is a duplicate (already replayed) and is
dropped; an event above the next one means events were missed (a full
channel, another process publishing first) and the gap is filled from the
database before the event goes out.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from msgspec import UNSET

from chat import events, protocol, selectors, services
from chat.protocol import ChatError, ErrorCode

log = logging.getLogger(__name__)


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser's (or bot's) socket at /chat/stream/."""

    async def connect(self) -> None:
        """Accept, then close with 4401 unless the handshake carried valid credentials."""
        self.user = self.scope.get("user")
        self.rooms: dict[int, int] = {}  # room id -> last seq delivered
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            error = ChatError(ErrorCode.USER_HAS_TO_LOGIN, "Log in, then open the socket again.")
            await self.send(text_data=protocol.error_frame(error))
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)

    async def disconnect(self, code: int) -> None:
        """Leave every joined room, with leave notices when those are on."""
        for room_id in list(self.rooms):
            await self._leave(room_id)

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
        group = events.room_group(room_id)
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            result = await database_sync_to_async(services.room_join)(
                user=self.user, room_id=room_id, since=since, announce=not rejoin
            )
        except BaseException:
            if not rejoin:
                await self.channel_layer.group_discard(group, self.channel_name)
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
        message = await database_sync_to_async(services.message_send)(
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
        await self.send(text_data=event["text"])

    async def _fill_gap(self, room_id: int, after: int, upto: int) -> None:
        missed = await database_sync_to_async(selectors.messages_after)(
            room_id=room_id, after=after, upto=upto
        )
        for message in missed:
            await self.send(text_data=protocol.encode(events.message_event(message)))

    async def _leave(self, room_id: int) -> None:
        del self.rooms[room_id]
        try:
            await self.channel_layer.group_discard(events.room_group(room_id), self.channel_name)
            await database_sync_to_async(services.room_leave)(user=self.user, room_id=room_id)
        except Exception:
            log.exception("Leaving room %s failed", room_id)
