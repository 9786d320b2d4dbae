"""The raw-Python baseline: a minimal broadcast WebSocket server on picows, storing nothing.

Not for production, and not multichat: it shows how far multichat is from
what plain Python does on one core. It speaks the subset of docs/protocol.md
the load generator uses, in production's frame shapes: ``join`` (optional
``since``: the posts after it are replayed from memory, at most
CHAT_REPLAY_MAX, newest kept), ``send`` (the post gets the room's next seq,
kept in memory; its frame is encoded once and written to every member's
transport; with a ``ref`` the sender gets the ``sent`` reply), ``leave`` and
``ping``; and presence as production sends it: the full list after a join,
changes coalesced to one frame per room per CHAT_PRESENCE_COALESCE_SECONDS.
No authentication (the session cookie is ignored; each socket is its own
user), no database, no Redis, no rate limit, no write buffer limit: a socket
that does not read just buffers. Any positive room id is a room.

    .venv/bin/python -m bench.raw --port 8001    # GET /healthz answers 200

bench.run starts it as the ``raw`` configuration (``--configs production,raw``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import time
from typing import Any

import msgspec
from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

STREAM_PATH = b"/chat/stream/"
REPLAY_MAX = int(os.environ.get("CHAT_REPLAY_MAX", "1000"))
PRESENCE_SECONDS = float(os.environ.get("CHAT_PRESENCE_COALESCE_SECONDS", "1"))
COMMANDS = "join, leave, send, ping"


class Command(msgspec.Struct):
    """The fields of a client frame this server reads (others are ignored)."""

    command: str = ""
    room: int = 0
    since: int | None = None
    message: str | None = None
    msg_type: int = 0
    ref: Any = None


class Post(msgspec.Struct):
    """A message frame, as production's MessageEvent encodes it."""

    msg_type: int
    room: int
    username: str
    message: str
    seq: int
    ts: str


_decode = msgspec.json.Decoder(Command).decode
_encode = msgspec.json.Encoder().encode
TEXT = WSMsgType.TEXT


def iso_now() -> str:
    """Now in UTC as chat.events.iso_utc writes it (milliseconds, Z)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class Room:
    """A room: its members, every post's encoded frame (seq = index + 1), pending presence."""

    __slots__ = ("flush", "id", "members", "pending", "posts")

    def __init__(self, room_id: int) -> None:
        self.id = room_id
        self.members: dict[Socket, None] = {}  # insertion-ordered set
        self.posts: list[bytes] = []
        self.pending: dict[str, str] = {}  # username -> state, not yet announced
        self.flush: asyncio.TimerHandle | None = None

    def broadcast(self, payload: bytes) -> None:
        """Write one encoded frame to every member's transport."""
        for member in self.members:
            member.transport.send(TEXT, payload)

    def announce(self, username: str, state: str) -> None:
        """Queue a presence change; the room's next presence frame carries it."""
        self.pending[username] = state
        if self.flush is None:
            loop = asyncio.get_running_loop()
            self.flush = loop.call_later(PRESENCE_SECONDS, self.send_presence)

    def send_presence(self) -> None:
        """Send the queued presence changes to every member, encoded once."""
        self.flush = None
        changed = [{"username": name, "state": state} for name, state in self.pending.items()]
        self.pending = {}
        self.broadcast(_encode({"presence": self.id, "members": changed, "full": False}))

    def full_presence(self) -> bytes:
        """The room's whole presence list."""
        listed = [{"username": member.username, "state": "online"} for member in self.members]
        return _encode({"presence": self.id, "members": listed, "full": True})


ROOMS: dict[int, Room] = {}
_names = itertools.count(1)


def room_for(room_id: int) -> Room:
    """The room with this id, made on first use."""
    room = ROOMS.get(room_id)
    if room is None:
        room = ROOMS[room_id] = Room(room_id)
    return room


class Socket(WSListener):
    """One client socket: its user name and joined rooms."""

    def __init__(self) -> None:
        self.transport: WSTransport
        self.username = f"raw{next(_names)}"
        self.rooms: dict[int, Room] = {}

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Keep the transport."""
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """Leave every joined room."""
        for room in self.rooms.values():
            room.members.pop(self, None)
            room.announce(self.username, "offline")
        self.rooms.clear()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Run one command per text frame; answer a close."""
        if frame.msg_type is not TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        try:
            command = _decode(frame.get_payload_as_memoryview())
        except msgspec.ValidationError as error:
            self.error("BAD_REQUEST", str(error), None)
            return
        except msgspec.DecodeError:
            self.error("BAD_REQUEST", "Send one JSON object per frame.", None)
            return
        name = command.command
        if name == "send":
            self.send_post(command)
        elif name == "join":
            self.join(command)
        elif name == "leave":
            self.leave(command)
        elif name == "ping":
            self.reply({"pong": True}, command.ref)
        else:
            detail = f"Unknown command {name!r}; use one of {COMMANDS}."
            self.error("UNKNOWN_COMMAND", detail, command.ref)

    def reply(self, frame: dict[str, Any], ref: Any) -> None:
        """Send a reply, with the command's ref if it had one."""
        if ref is not None:
            frame["ref"] = ref
        self.transport.send(TEXT, _encode(frame))

    def error(self, code: str, detail: str, ref: Any) -> None:
        """Send an error frame."""
        self.reply({"error": code, "detail": detail}, ref)

    def join(self, command: Command) -> None:
        """Join: the reply, the posts after ``since`` (at most REPLAY_MAX), the presence list."""
        if command.room <= 0:
            self.error("ROOM_INVALID", f"There is no room {command.room}.", command.ref)
            return
        room = room_for(command.room)
        last_seq = len(room.posts)
        since = command.since
        replay: list[bytes] = []
        if since is not None and 0 <= since < last_seq:
            replay = room.posts[max(since, last_seq - REPLAY_MAX) :]
        first = room.id not in self.rooms
        self.rooms[room.id] = room
        room.members[self] = None
        self.reply(
            {
                "join": room.id,
                "title": f"Room {room.id}",
                "last_seq": last_seq,
                "staff_only": False,
                "kind": "room",
                "replayed": len(replay),
                "truncated": since is not None and last_seq - since > len(replay),
                "read_seq": 0,
                "posts": last_seq,
                "read_posts": 0,
            },
            command.ref,
        )
        send = self.transport.send
        for payload in replay:
            send(TEXT, payload)
        send(TEXT, room.full_presence())
        if first:
            room.announce(self.username, "online")

    def leave(self, command: Command) -> None:
        """Leave a joined room."""
        room = self.rooms.pop(command.room, None)
        if room is None:
            detail = f"This socket has not joined room {command.room}."
            self.error("ROOM_INVALID", detail, command.ref)
            return
        room.members.pop(self, None)
        room.announce(self.username, "offline")
        self.reply({"leave": room.id}, command.ref)

    def send_post(self, command: Command) -> None:
        """Number the post, keep its frame, write it to every member, reply ``sent``."""
        room = self.rooms.get(command.room)
        if room is None:
            detail = f"Join room {command.room} before sending to it."
            self.error("ROOM_ACCESS_DENIED", detail, command.ref)
            return
        if not command.message:
            self.error("BAD_REQUEST", "message must be a non-blank string.", command.ref)
            return
        seq = len(room.posts) + 1
        payload = _encode(
            Post(command.msg_type, room.id, self.username, command.message, seq, iso_now())
        )
        room.posts.append(payload)
        room.broadcast(payload)
        if command.ref is not None:
            self.reply({"sent": room.id, "seq": seq}, command.ref)


def route(request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener | None:
    """The chat socket at /chat/stream/, 200 at /healthz, 404 elsewhere."""
    path = request.path.split(b"?", 1)[0]
    if path == STREAM_PATH:
        return Socket()
    if path == b"/healthz":
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_ok_response(b'{"status": "ok"}\n'), None
        )
    return None


async def serve(host: str, port: int) -> None:
    """Serve until cancelled."""
    server = await ws_create_server(route, host, port, websocket_handshake_timeout=60)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve on uvloop."""
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m bench.raw", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
