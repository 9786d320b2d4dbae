"""A socket's resources end with it, and a socket that does not keep up holds a bounded queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time

import pytest
from channels.db import database_sync_to_async
from websockets.exceptions import ConnectionClosed

from chat import consumers, events, services
from chat.hub import hub
from testkit.factories import session_cookie
from testkit.live import LiveServer, is_message, join, next_frame, open_ws

pytestmark = pytest.mark.django_db(transaction=True)


class AppSocket:
    """The real ASGI application driven directly, with a ``send`` the test controls."""

    def __init__(self, headers: list[tuple[bytes, bytes]]):
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.frames: asyncio.Queue = asyncio.Queue()  # decoded text frames the app sent
        self.closed_with: int | None = None
        self.gate = asyncio.Event()  # sends wait here while it is clear
        self.gate.set()
        self.fail_after: int | None = None  # raise OSError (a client gone) past this many sends
        self.sent = 0
        self.headers = headers
        self.task: asyncio.Task | None = None

    async def start(self) -> AppSocket:
        """Run the application and complete the handshake."""
        from config.asgi import application

        scope = {
            "type": "websocket",
            "path": "/chat/stream/",
            "raw_path": b"/chat/stream/",
            "query_string": b"",
            "headers": self.headers,
            "subprotocols": [],
            "client": ("127.0.0.1", 40000),
            "server": ("localhost", 80),
        }
        self.task = asyncio.ensure_future(application(scope, self.incoming.get, self._send))
        await self.incoming.put({"type": "websocket.connect"})
        return self

    async def _send(self, message: dict) -> None:
        if message["type"] == "websocket.accept":
            return
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise OSError("the client went away")  # what uvicorn's ClientDisconnected is
        await self.gate.wait()
        self.sent += 1
        if message["type"] == "websocket.close":
            self.closed_with = message.get("code")
        else:
            await self.frames.put(json.loads(message["text"]))

    async def command(self, **frame) -> None:
        """Send one command frame to the application."""
        await self.incoming.put({"type": "websocket.receive", "text": json.dumps(frame)})

    async def next(self, predicate=lambda f: True, timeout: float = 5) -> dict:
        """The next frame the app sent that matches ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if predicate(frame):
                    return frame

    async def end(self) -> None:
        """Disconnect (if still running) and wait for the application to return."""
        if not self.task.done():
            await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 10)


async def app_socket(user) -> AppSocket:
    """An AppSocket logged in as ``user``."""
    cookie = await database_sync_to_async(session_cookie)(user)
    return await AppSocket(
        [(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", cookie)]
    ).start()


async def test_a_client_gone_mid_reply_gives_back_its_slot_and_groups(
    settings, caplog, connect, alice, room
):
    """Sockets whose replies fail (client gone) release everything; the user is never locked out."""
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    for _ in range(4):
        sock = await app_socket(alice)
        await sock.command(command="join", room=room.pk)
        await sock.next(lambda f: "join" in f)
        sock.fail_after = sock.sent  # from now on the client is gone
        for i in range(30):
            await sock.command(command="history", room=room.pk, ref=i)
        await asyncio.wait_for(sock.task, 10)
        assert sock.task.exception() is None  # ended cleanly, not with the send's error
    assert alice.pk not in consumers._sockets_per_user
    assert hub().members(events.room_group(room.pk)) == 0
    assert hub().members(events.user_group(alice.pk)) == 0
    assert "Channel layer unavailable" not in caplog.text
    sock = await connect(alice)  # not TOO_MANY_CONNECTIONS
    assert "join" in await sock.join(room.pk)


def _post_many(room_id: int, user, count: int) -> None:
    for i in range(count):
        services.room_post(room_id=room_id, user=user, text=f"m{i}")


async def test_a_socket_that_stops_reading_holds_a_bounded_queue_and_loses_nothing(
    settings, alice, bob, room
):
    """Past CHAT_SOCKET_QUEUE_MAX a slow socket keeps a marker; it later gets every message once."""
    settings.CHAT_SOCKET_QUEUE_MAX = 10
    settings.CHAT_SLOW_SOCKET_SECONDS = 60
    slow = await app_socket(alice)
    try:
        await slow.command(command="join", room=room.pk)
        await slow.next(lambda f: "join" in f)
        slow.gate.clear()  # alice stops reading: every send waits
        await database_sync_to_async(_post_many)(room.pk, bob, 300)
        (engine,) = hub().groups[events.room_group(room.pk)].members  # its chat.delivery.Delivery
        deadline = time.monotonic() + 10
        while engine.behind.get(room.pk) != 300:  # the last publish has reached the hub
            assert time.monotonic() < deadline, engine.behind
            await asyncio.sleep(0.02)
        assert len(engine.inbox) <= settings.CHAT_SOCKET_QUEUE_MAX
        slow.gate.set()
        seqs = []
        while len(seqs) < 300:
            frame = await slow.next(lambda f: "seq" in f and f.get("msg_type") == 0)
            seqs.append(frame["seq"])
        assert seqs == list(range(1, 301))
        assert engine.behind == {} and engine.behind_since is None
        # The activity it was not sent while backed up (no frame per tick into a full
        # queue) comes once it has drained: the room as it is now.
        await slow.next(
            lambda f: any(
                e["room"] == room.pk and e["last_seq"] == 300 for e in f.get("activity", [])
            )
        )
    finally:
        await slow.end()


# --- against a real server -------------------------------------------------


@pytest.fixture(scope="module")
def server(database_url):
    """A real server with a small queue bound, a short patience, and three sockets per user."""
    env = {
        "CHAT_SEND_RATE": "0",
        "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0",
        "CHAT_SOCKET_QUEUE_MAX": "20",
        "CHAT_SLOW_SOCKET_SECONDS": "1",
        "CHAT_REPLAY_MAX": "2000",
        "CHAT_MAX_SOCKETS_PER_USER": "3",
    }
    live = LiveServer(
        database_url=database_url, redis_url=os.environ.get("REDIS_URL"), extra_env=env
    ).prepare()
    live.room_id = live.seed(users=["slow", "sender", "quitter"], rooms=["Busy"]).rooms["Busy"]
    live.start()
    yield live
    live.stop()


COUNT = 1500
TEXT = "x" * 3900  # 1,500 of these are ~5.9 MB: more than the kernel buffers on both sides hold


async def wait_for_log(server: LiveServer, text: str, timeout: float) -> None:
    """Wait until the server's log contains ``text``."""
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()}"
        await asyncio.sleep(0.1)


async def test_a_socket_behind_for_too_long_is_closed_with_4408_and_resumes(server):
    """A reader stalled past CHAT_SLOW_SOCKET_SECONDS gets a gap-free prefix, 4408, then since."""
    slow = await open_ws(server, "slow", max_queue=1)  # reads nothing more from TCP once one waits
    sender = await open_ws(server, "sender")
    try:
        await join(slow, server.room_id)
        await join(sender, server.room_id)
        for _ in range(COUNT):
            await sender.send(json.dumps({"command": "send", "room": server.room_id,
                                          "message": TEXT}))  # fmt: skip
        await next_frame(sender, lambda f: f.get("seq") == COUNT, timeout=120)
        await wait_for_log(server, "behind for too long", timeout=30)
        seqs = []
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(60):
                while True:
                    frame = json.loads(await slow.recv())
                    if is_message(frame):
                        seqs.append(frame["seq"])
        assert slow.close_code == 4408
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < COUNT
    finally:
        await slow.close()
    again = await open_ws(server, "slow")
    try:
        reply = await join(again, server.room_id, since=len(seqs))
        assert reply["replayed"] == COUNT - len(seqs)
        rest = [
            (await next_frame(again, is_message, timeout=30))["seq"]
            for _ in range(COUNT - len(seqs))
        ]
        assert seqs + rest == list(range(1, COUNT + 1))
    finally:
        await again.close()
        await sender.close()


async def test_clients_that_vanish_mid_reply_never_lock_their_user_out(server):
    """Closing at once after 300 history commands, again and again, never locks the user out."""
    for _ in range(5):  # more than CHAT_MAX_SOCKETS_PER_USER (3)
        ws = await open_ws(server, "quitter")
        await join(ws, server.room_id)
        for i in range(300):
            await ws.send(json.dumps({"command": "history", "room": server.room_id, "ref": i}))
        ws.transport.abort()  # gone, with replies still going out
    deadline = time.monotonic() + 30
    while True:  # the last sockets may still be winding down: wait for their slots
        ws = await open_ws(server, "quitter")
        reply = await join(ws, server.room_id)
        await ws.close()
        if "join" in reply:
            break
        assert time.monotonic() < deadline, reply
        await asyncio.sleep(0.2)
    assert "Channel layer unavailable" not in server.log()
