"""chat.delivery driven directly: a real hub, a real database, and a list for a client.

No consumer and no server: each test makes a Delivery whose ASGI send keeps
what it is given (and can stop reading, or fail), and whose owner keeps the
events handed to it. The last tests pin the parts of channels that
chat.consumers relies on without channels documenting them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from channels.consumer import AsyncConsumer, get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer

from chat import delivery, events, protocol, selectors, services
from chat.consumers import ChatConsumer
from chat.delivery import Delivery
from chat.hub import Hub

ROOM, OTHER = 1, 2


class Client:
    """The socket's far end: an ASGI send that keeps each message, once it reads."""

    def __init__(self) -> None:
        self.trace: list[dict[str, Any]] = []  # what was sent, and what the owner handled
        self.reading = asyncio.Event()  # while clear, every send waits (a stalled reader)
        self.reading.set()
        self.failing: Exception | None = None  # raised by text sends when set

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.failing is not None and message["type"] == "websocket.send":
            raise self.failing
        await self.reading.wait()
        self.trace.append(message)

    def frames(self) -> list[dict[str, Any]]:
        """The decoded text frames received, in order."""
        return [json.loads(m["text"]) for m in self.trace if m["type"] == "websocket.send"]

    def seqs(self, room_id: int = ROOM) -> list[int]:
        """The seqs of the room's messages received, in order."""
        frames = self.frames()
        return [f["seq"] for f in frames if f.get("room") == room_id and f.get("seq") is not None]

    def closes(self) -> list[int]:
        """The codes of the close messages sent."""
        return [m["code"] for m in self.trace if m["type"] == "websocket.close"]


class Owner:
    """The socket that owns the engine (chat.delivery.Owner): keeps what it is given."""

    def __init__(self, trace: list[dict[str, Any]]) -> None:
        self.trace = trace
        self.gave_up: tuple[list[int], int] | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        self.trace.append(message)

    def given_up(self, rooms: list[int], code: int) -> None:
        self.gave_up = (rooms, code)


@pytest.fixture
async def fanout():
    """A hub of its own on channels' in-process layer, closed after the test.

    It sends no layer probes: none of these tests needs one, and on Python
    3.11 closing the hub while a probe's reply lands can lose the
    cancellation (asyncio.wait_for), which would hang the teardown.
    """
    made = Hub(InMemoryChannelLayer(), asyncio.get_running_loop(), probe=3600.0)
    yield made
    await made.close()


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def owner(client: Client) -> Owner:
    return Owner(client.trace)


@pytest.fixture
def engine(client: Client, owner: Owner, fanout: Hub) -> Delivery:
    return Delivery(client, owner, fanout, label="user 7")


async def joined(engine: Delivery, room_id: int, at: int) -> Delivery:
    """Subscribe ``engine`` to the room and start it after seq ``at``, as a join does."""
    await engine.watch(room_id)
    engine.join(room_id, at)
    return engine


def live(room_id: int, seq: int | None, **extra: Any) -> dict[str, Any]:
    """A room event as events.publish_on_commit sends it (the hub adds the ASGI frame)."""
    text = json.dumps({"room": room_id, "seq": seq, "message": "live"})
    return {"type": events.EVENT_TYPE, "group": events.room_group(room_id), "room": room_id,
            "seq": seq, "text": text, **extra}  # fmt: skip


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, or fail."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (polling state that has no event)
            await asyncio.sleep(0.005)


def _post_many(room_id: int, user: Any, count: int) -> None:
    for i in range(1, count + 1):
        services.room_post(room_id=room_id, user=user, text=f"m{i}")


# --- order, duplicates, gaps -------------------------------------------------


async def test_events_in_order_are_sent_in_place_each_once(engine, client, fanout):
    """The next seq of a joined room goes out during the hub's push, without a task."""
    await joined(engine, ROOM, at=0)
    for seq in (1, 2, 3):
        fanout.deliver(live(ROOM, seq))
        assert engine.drainer is None and client.seqs() == list(range(1, seq + 1))
    assert [m["type"] for m in client.trace] == ["websocket.send"] * 3


async def test_duplicates_and_events_of_rooms_not_joined_yet_are_dropped(engine, client, fanout):
    """At or below the last seq, or of a room subscribed but not joined: dropped. Notices: sent."""
    await joined(engine, ROOM, at=5)
    await engine.watch(OTHER)  # a join still reading the room: its replay has these
    fanout.deliver(live(ROOM, 3))
    fanout.deliver(live(ROOM, 5))
    fanout.deliver(live(OTHER, 1))
    fanout.deliver(live(ROOM, None))  # an enter notice has no seq
    fanout.deliver(live(ROOM, 6))
    fanout.deliver(live(ROOM, 6))
    assert client.frames() == [
        {"room": ROOM, "seq": None, "message": "live"},
        {"room": ROOM, "seq": 6, "message": "live"},
    ]
    async with engine.turn:  # a command runs: these queue, and the drain task checks them
        for seq in (6, 7, 7):
            fanout.deliver(live(ROOM, seq))
    await until(lambda: engine.drainer is None)
    assert client.seqs() == [6, 7] and engine.rooms == {ROOM: 7}


async def test_a_gap_is_filled_from_the_database_a_page_at_a_time(
    engine, client, fanout, monkeypatch, room, bob
):
    """Seq 8 after 0: 1-7 are read in pages of FILL_PAGE, then 8 goes out; room.sync fills too."""
    monkeypatch.setattr(delivery, "FILL_PAGE", 3)
    pages: list[tuple[int, int]] = []
    read = selectors.messages_after

    def counted(*, room_id: int, after: int, upto: int) -> list:
        pages.append((after, upto))
        return read(room_id=room_id, after=after, upto=upto)

    monkeypatch.setattr(selectors, "messages_after", counted)
    await database_sync_to_async(_post_many)(room.pk, bob, 10)
    await joined(engine, room.pk, at=0)
    fanout.deliver(live(room.pk, 8))
    assert engine.drainer is not None  # a gap is never filled in the hub's push
    await until(lambda: len(client.seqs(room.pk)) == 8)
    assert client.seqs(room.pk) == list(range(1, 9))
    assert [f["message"] for f in client.frames()] == [f"m{i}" for i in range(1, 8)] + ["live"]
    assert pages == [(0, 3), (3, 6), (6, 7)]
    fanout.deliver({"type": events.ROOM_SYNC_TYPE, "group": events.room_group(room.pk),
                    "room": room.pk, "seq": 10})  # fmt: skip
    await until(lambda: len(client.seqs(room.pk)) == 10)
    assert client.seqs(room.pk) == list(range(1, 11)) and engine.rooms == {room.pk: 10}
    await until(lambda: engine.drainer is None)


async def test_the_sockets_that_miss_the_same_events_share_one_read(fanout, room, bob, monkeypatch):
    """Five sockets at seq 0 get seq 4 first: seqs 1-3 are read once for all five, not five times.

    A socket at another seq reads its own range; a socket that closes while the
    shared read runs does not stop it for the others.
    """
    reads: list[tuple[int, int]] = []
    gate = asyncio.Event()
    real = delivery._read_stream

    async def counted(*, room_id: int, after: int, upto: int) -> list[str]:
        reads.append((after, upto))
        await gate.wait()
        return await real(room_id=room_id, after=after, upto=upto)

    monkeypatch.setattr(delivery, "_read_stream", counted)
    await database_sync_to_async(_post_many)(room.pk, bob, 4)
    clients = [Client() for _ in range(6)]
    engines = [
        Delivery(c, Owner(c.trace), fanout, label=f"user {i}") for i, c in enumerate(clients)
    ]
    for engine in engines[:5]:
        await joined(engine, room.pk, at=0)
    await joined(engines[5], room.pk, at=1)  # has seq 1 already: a range of its own
    fanout.deliver(live(room.pk, 4))
    await until(lambda: len(reads) == 2)
    engines[0].close()  # gone while the read runs
    gate.set()
    for client in clients[1:5]:
        await until(lambda client=client: client.seqs(room.pk) == [1, 2, 3, 4])
    await until(lambda: clients[5].seqs(room.pk) == [2, 3, 4])
    assert sorted(reads) == [(0, 3), (1, 3)]
    assert fanout.reads == {}  # nothing kept once read


# --- a socket that does not keep up ------------------------------------------


async def test_a_full_inbox_keeps_a_marker_and_the_socket_gets_everything_once_it_reads(
    engine, client, owner, fanout, settings, room, bob
):
    """Past CHAT_SOCKET_QUEUE_MAX: messages move ``behind``, notices drop, deletes queue anyway."""
    settings.CHAT_SOCKET_QUEUE_MAX = 3
    settings.CHAT_SLOW_SOCKET_SECONDS = 2.0
    await database_sync_to_async(_post_many)(room.pk, bob, 9)
    await joined(engine, room.pk, at=0)
    client.reading.clear()
    for seq in range(1, 10):
        fanout.deliver(live(room.pk, seq))
    fanout.deliver(live(room.pk, None, droppable=True))  # an enter notice: dropped
    delete = live(room.pk, None)  # a delete notice: never lost
    fanout.deliver(delete)
    assert [e["seq"] for e in engine.inbox] == [2, 3, 4, None]  # 1 is being sent
    assert engine.behind == {room.pk: 9} and engine.behind_since is not None
    limit_passed = asyncio.Event()  # runs after the engine's own slow-socket timer
    fanout.loop.call_later(settings.CHAT_SLOW_SOCKET_SECONDS, limit_passed.set)
    client.reading.set()
    await until(lambda: len(client.seqs(room.pk)) == 9)
    assert client.seqs(room.pk) == list(range(1, 10))
    frames = client.frames()
    assert [f["message"] for f in frames] == ["live"] * 5 + [f"m{i}" for i in range(5, 10)]
    assert frames[4] == json.loads(delete["text"])
    await until(lambda: engine.drainer is None)
    assert engine.behind == {} and engine.behind_since is None
    await limit_passed.wait()
    assert owner.gave_up is None and not engine.closed  # caught up in time


async def test_a_socket_behind_for_too_long_is_given_up_with_4408(
    engine, client, owner, fanout, settings, caplog
):
    """Still behind after CHAT_SLOW_SOCKET_SECONDS: queue, rooms and groups dropped; owner told."""
    settings.CHAT_SOCKET_QUEUE_MAX = 1
    settings.CHAT_SLOW_SOCKET_SECONDS = 0.05
    await joined(engine, ROOM, at=0)
    await joined(engine, OTHER, at=0)
    client.reading.clear()
    for seq in (1, 2, 3):
        fanout.deliver(live(ROOM, seq))
    assert engine.behind == {ROOM: 3}
    with caplog.at_level(logging.INFO, logger="chat.delivery"):
        await until(lambda: owner.gave_up is not None)
    assert owner.gave_up == ([ROOM, OTHER], protocol.CLOSE_TOO_SLOW)
    assert "Closing the socket of user 7: behind for too long" in caplog.text
    assert engine.closed and engine.rooms == {} and engine.inbox == [] and engine.behind == {}
    assert engine not in fanout.joined and fanout.members(events.room_group(ROOM)) == 0
    await until(lambda: engine.drainer is None)  # cancelled mid-send
    engine.push(live(ROOM, 4, frame={"type": "websocket.send", "text": "{}"}))
    assert engine.inbox == [] and engine.drainer is None


# --- failures ----------------------------------------------------------------


async def test_a_send_that_fails_closes_the_socket_with_1011(engine, client, fanout, caplog):
    """A send raising in the hub's push is not lost: the drain task logs it and closes (1011)."""
    await joined(engine, ROOM, at=0)
    client.failing = RuntimeError("injected send failure")
    fanout.deliver(live(ROOM, 1))
    await until(lambda: client.closes() == [protocol.CLOSE_SERVER_ERROR])
    assert "Delivering to the socket of user 7 failed" in caplog.text
    assert "injected send failure" in caplog.text


async def test_a_socket_the_hub_cannot_hand_an_event_is_aborted_with_1011(
    engine, client, owner, fanout
):
    """push raising (a malformed event) makes the hub drop the member and abort it: 1011."""
    await joined(engine, ROOM, at=0)
    await engine.subscribe("chat.user.7", via=events.USERS_GROUP)
    malformed = live(ROOM, 1)
    del malformed["room"]
    fanout.deliver(malformed)
    assert owner.gave_up == ([ROOM], protocol.CLOSE_SERVER_ERROR)
    assert engine.closed and engine not in fanout.joined
    assert fanout.members("chat.user.7") == 0
    fanout.deliver(live(ROOM, 1))
    assert client.trace == []


# --- leaving, the owner's events, the turn -------------------------------------


async def test_leaving_a_room_drops_its_queued_events(engine, client, fanout):
    """Events of a room left while they wait in the inbox are not sent; other rooms' are."""
    await joined(engine, ROOM, at=0)
    await joined(engine, OTHER, at=0)
    client.reading.clear()
    fanout.deliver(live(ROOM, 1))  # already being sent when the room is left
    fanout.deliver(live(ROOM, 2))
    fanout.deliver(live(OTHER, 1))
    fanout.deliver(live(ROOM, 3))
    await engine.leave(ROOM)
    assert engine.rooms == {OTHER: 0} and fanout.members(events.room_group(ROOM)) == 0
    client.reading.set()
    await until(lambda: engine.drainer is None)
    assert [(f["room"], f["seq"]) for f in client.frames()] == [(ROOM, 1), (OTHER, 1)]
    fanout.deliver(live(ROOM, 4))
    assert client.seqs(ROOM) == [1]


async def test_other_events_go_to_the_owner_in_order_with_the_room_events(engine, client, fanout):
    """An access event queued between two messages is handled by the owner between them."""
    await joined(engine, ROOM, at=0)
    await engine.subscribe("chat.user.7", via=events.USERS_GROUP)
    client.reading.clear()
    fanout.deliver(live(ROOM, 1))
    fanout.deliver({"type": events.USER_CHANGED_TYPE, "group": "chat.user.7", "user": 7})
    fanout.deliver(live(ROOM, 2))
    client.reading.set()
    await until(lambda: engine.drainer is None)
    assert [m["type"] for m in client.trace] == ["websocket.send", "user.changed", "websocket.send"]
    assert client.seqs() == [1, 2]


async def test_events_wait_while_the_owner_runs_a_command_in_its_turn(engine, client, fanout):
    """While ``turn`` is held (a join reading the room), an event queues and goes out after."""
    await joined(engine, ROOM, at=0)
    async with engine.turn:
        fanout.deliver(live(ROOM, 1))
        assert client.trace == [] and [e["seq"] for e in engine.inbox] == [1]
        engine.join(ROOM, 0)  # as a join sets the room's seq before the turn ends
    await until(lambda: client.seqs() == [1])
    await until(lambda: engine.drainer is None)


def ready_frame(text: str) -> dict[str, Any]:
    """A ready frame, as the activity feed pushes it."""
    return {"type": delivery.FRAME_TYPE, "frame": {"type": "websocket.send", "text": text}}


async def test_a_ready_frame_goes_out_in_place_when_idle_and_in_order_when_not(engine, client):
    """An activity frame costs no task on an idle socket; behind a backlog it keeps its place."""
    await joined(engine, ROOM, at=0)
    engine.push(ready_frame('{"activity": 1}'))
    assert engine.drainer is None and client.frames() == [{"activity": 1}]
    client.reading.clear()
    engine.push(live(ROOM, 1, frame={"type": "websocket.send", "text": '{"seq": 1}'}))
    engine.push(ready_frame('{"activity": 2}'))
    engine.push(live(ROOM, 2, frame={"type": "websocket.send", "text": '{"seq": 2}'}))
    client.reading.set()
    await until(lambda: engine.drainer is None)
    assert client.frames() == [{"activity": 1}, {"seq": 1}, {"activity": 2}, {"seq": 2}]
    engine.close()
    engine.push(ready_frame('{"activity": 3}'))
    assert client.frames()[-1] == {"seq": 2}  # nothing after the socket ended


class Socket(Client):
    """A client whose server offers the frame writer (chat/wire.py), refused while not reading."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0  # frames that came through the writer

    def write(self, data: bytes) -> bool:
        if not self.reading.is_set():
            return False  # a paused transport: the engine must use the ASGI send, which waits
        assert data[0] == 0x81 and data[1] < 126  # one small text frame, as built by chat.wire
        self.trace.append({"type": "websocket.send", "text": data[2:].decode()})
        self.written += 1
        return True


async def test_a_socket_with_a_writer_gets_the_prebuilt_frame_and_the_asgi_send_when_paused(
    owner, fanout
):
    """In-order events go out through the writer; while it refuses, through send, still in order."""
    socket = Socket()
    engine = Delivery(socket, owner, fanout, label="user 7", write=socket.write)
    await joined(engine, ROOM, at=0)
    fanout.deliver(live(ROOM, 1))
    fanout.deliver(live(ROOM, 2))
    assert socket.written == 2 and engine.drainer is None and socket.seqs() == [1, 2]
    socket.reading.clear()
    fanout.deliver(live(ROOM, 3))  # refused by the writer: the ASGI send waits in a task
    fanout.deliver(live(ROOM, 4))  # queued behind it
    socket.reading.set()
    await until(lambda: engine.drainer is None)
    assert socket.seqs() == [1, 2, 3, 4] and socket.written == 2
    fanout.deliver(live(ROOM, 5))
    assert socket.seqs() == [1, 2, 3, 4, 5] and socket.written == 3
    engine.close()


# --- what chat.consumers relies on in channels ----------------------------------


async def test_channels_calls_the_consumer_and_names_handlers_as_the_consumer_expects():
    """as_asgi's app calls the instance with (scope, receive, send); "a.b" names handler a_b."""
    assert list(inspect.signature(AsyncConsumer.__call__).parameters) == [
        "self", "scope", "receive", "send"
    ]  # fmt: skip
    calls: list[tuple[Any, ...]] = []

    class Recorder(AsyncWebsocketConsumer):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            calls.append((type(self), scope, receive, send))

    scope, receive, send = {"type": "websocket"}, object(), object()
    await Recorder.as_asgi()(scope, receive, send)
    assert calls == [(Recorder, scope, receive, send)]
    assert get_handler_name({"type": "websocket.receive"}) == "websocket_receive"
    assert get_handler_name({"type": events.USER_CHANGED_TYPE}) == "user_changed"


async def test_channels_websocket_handlers_send_through_base_send_without_a_channel_layer():
    """With no groups, connect/send/close/disconnect need only base_send; disconnect stops."""
    sent: list[dict[str, Any]] = []

    async def collect(message: dict[str, Any]) -> None:
        sent.append(message)

    consumer = AsyncWebsocketConsumer()
    consumer.base_send = collect  # no channel_layer, no channel_name: as ChatConsumer runs
    await consumer.websocket_connect({"type": "websocket.connect"})
    await consumer.send(text_data="hi")
    await consumer.close(code=protocol.CLOSE_TOO_SLOW)
    with pytest.raises(StopConsumer):
        await consumer.websocket_disconnect({"type": "websocket.disconnect", "code": 1000})
    assert sent == [
        {"type": "websocket.accept", "subprotocol": None},
        {"type": "websocket.send", "text": "hi"},
        {"type": "websocket.close", "code": protocol.CLOSE_TOO_SLOW},
    ]


async def test_the_consumer_runs_through_as_asgi_on_its_own_loop():
    """ChatConsumer.as_asgi() runs the consumer's __call__: an anonymous socket is refused, ends."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def collect(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.close":
            await incoming.put({"type": "websocket.disconnect", "code": message["code"]})

    await incoming.put({"type": "websocket.connect"})
    scope = {"type": "websocket", "path": "/chat/stream/", "headers": []}
    async with asyncio.timeout(5):
        await ChatConsumer.as_asgi()(scope, incoming.get, collect)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(sent[1]["text"])["error"] == protocol.ErrorCode.USER_HAS_TO_LOGIN
    assert sent[2]["code"] == protocol.CLOSE_UNAUTHENTICATED
