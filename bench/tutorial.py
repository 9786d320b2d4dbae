"""The classic Channels multichat tutorial design: the baseline the benchmark compares against.

Not for production. It speaks the subset of docs/protocol.md a load generator
uses (join with since, send with ref, leave) in production's frame shapes, but
the tutorial's way: channels' AuthMiddlewareStack, a plain
AsyncJsonWebsocketConsumer with channels' own dispatch loop, the ORM on the
one shared database thread, and a ``chat.message`` event that every recipient
JSON-encodes for itself. No rate limit, no seq gap filling, no enter/leave
notices. Start it with channels_redis' list-based layer::

    DJANGO_SETTINGS_MODULE=config.settings CHANNEL_LAYER=core REDIS_URL=... DATABASE_URL=... \\
        .venv/bin/daphne -b 127.0.0.1 -p PORT bench.tutorial:application
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: these modules import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.db import database_sync_to_async  # noqa: E402
from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.db import transaction  # noqa: E402
from django.urls import path  # noqa: E402

from chat import protocol  # noqa: E402
from chat.errors import ChatError, ErrorCode  # noqa: E402
from chat.events import iso_utc  # noqa: E402
from chat.models import Message, Room  # noqa: E402
from chat.permissions import can_enter  # noqa: E402


def group_name(room_id: int) -> str:
    """The tutorial's channel-layer group of a room (apart from production's)."""
    return f"tutorial.room.{room_id}"


LOGIN_DETAIL = "Log in, then open the socket again."
FRAME_FIELDS = ("msg_type", "room", "username", "message", "seq", "ts")


def message_frame(message: Message) -> dict:
    """The frame of a stored message, as production sends it."""
    return {
        "msg_type": message.msg_type,
        "room": message.room_id,
        "username": message.username,
        "message": message.text,
        "seq": message.seq,
        "ts": iso_utc(message.created),
    }


@database_sync_to_async
def get_room_or_error(room_id: int, user, since: int | None) -> tuple[Room, list[dict]]:
    """The room if ``user`` may enter it, and its messages after ``since`` (oldest first)."""
    room = Room.objects.filter(pk=room_id).first()
    if room is None:
        raise ChatError(ErrorCode.ROOM_INVALID, f"There is no room {room_id}.")
    if not can_enter(user, room):
        raise ChatError(ErrorCode.ROOM_ACCESS_DENIED, f"Room {room_id} is for staff only.")
    if since is None or since >= room.last_seq:
        return room, []
    replay = room.messages.filter(seq__gt=since, seq__lte=room.last_seq).order_by("seq")
    return room, [message_frame(m) for m in replay]


@database_sync_to_async
def store_message(room_id: int, user, text: str) -> Message:
    """Store a message with the room's next seq, tutorial-style, in one transaction."""
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room_id)
        room.last_seq += 1
        room.save(update_fields=["last_seq"])
        return Message.objects.create(
            room=room,
            author=user,
            username=user.get_username(),
            msg_type=0,
            text=text,
            seq=room.last_seq,
        )


class TutorialChatConsumer(AsyncJsonWebsocketConsumer):
    """The tutorial's chat socket at /chat/stream/."""

    async def connect(self):
        """Accept; an anonymous socket is told to log in and closed with 4401."""
        self.rooms = set()
        await self.accept()
        if not self.scope["user"].is_authenticated:
            await self.send_json({"error": ErrorCode.USER_HAS_TO_LOGIN, "detail": LOGIN_DETAIL})
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)

    async def disconnect(self, code):
        """Leave every joined room's group."""
        for room_id in self.rooms:
            await self.channel_layer.group_discard(group_name(room_id), self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Run one command; a ChatError becomes an error frame."""
        try:
            if not isinstance(content, dict):
                raise ChatError(ErrorCode.BAD_REQUEST, "Send one JSON object per frame.")
            command = content.get("command")
            handler = getattr(self, f"command_{command}", None) if command else None
            if handler is None:
                raise ChatError(
                    ErrorCode.UNKNOWN_COMMAND,
                    f"Unknown command {command!r}; use one of join, leave, send.",
                )
            await handler(content)
        except ChatError as error:  # what the client did wrong, in production's error shape
            await self.reply({"error": error.code, "detail": error.detail}, content)
        except KeyError as missing:  # a required field (room, message) is absent
            detail = f"The field {missing} is missing."
            await self.reply({"error": ErrorCode.BAD_REQUEST, "detail": detail}, content)

    async def reply(self, frame: dict, content) -> None:
        """Send ``frame``, echoing the command's ref if it had one."""
        if isinstance(content, dict) and "ref" in content:
            frame["ref"] = content["ref"]
        await self.send_json(frame)

    async def command_join(self, content: dict) -> None:
        """Check access, subscribe, reply, then replay what came after ``since``."""
        room_id = protocol.parse_room_id(content["room"])
        since = content.get("since")
        since = None if since is None else protocol.parse_seq(since, field="since")
        room, replay = await get_room_or_error(room_id, self.scope["user"], since)
        await self.channel_layer.group_add(group_name(room_id), self.channel_name)
        self.rooms.add(room_id)
        reply = {
            "join": room_id,
            "title": room.title,
            "last_seq": room.last_seq,
            "staff_only": room.staff_only,
            "replayed": len(replay),
            "truncated": False,
        }
        await self.reply(reply, content)
        for frame in replay:
            await self.send_json(frame)

    async def command_leave(self, content: dict) -> None:
        """Unsubscribe from a joined room."""
        room_id = protocol.parse_room_id(content["room"])
        if room_id not in self.rooms:
            raise ChatError(ErrorCode.ROOM_INVALID, f"This socket has not joined room {room_id}.")
        self.rooms.discard(room_id)
        await self.channel_layer.group_discard(group_name(room_id), self.channel_name)
        await self.reply({"leave": room_id}, content)

    async def command_send(self, content: dict) -> None:
        """Store the message, then send the plain event to the room's group."""
        room_id = protocol.parse_room_id(content["room"])
        text = content["message"]
        if room_id not in self.rooms:
            raise ChatError(
                ErrorCode.ROOM_ACCESS_DENIED, f"Join room {room_id} before sending to it."
            )
        if not isinstance(text, str):
            raise ChatError(ErrorCode.BAD_REQUEST, "message must be a string.")
        message = await store_message(room_id, self.scope["user"], text)
        event = {"type": "chat.message", **message_frame(message)}  # a plain dict, not encoded
        await self.channel_layer.group_send(group_name(room_id), event)
        if "ref" in content:
            await self.reply({"sent": room_id, "seq": message.seq}, content)

    async def chat_message(self, event: dict) -> None:
        """Encode the event for this one recipient: the per-recipient json.dumps compared."""
        await self.send_json({field: event[field] for field in FRAME_FIELDS})


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(
            URLRouter([path("chat/stream/", TutorialChatConsumer.as_asgi())])
        ),
    }
)
