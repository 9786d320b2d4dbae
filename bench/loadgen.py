"""The load generator: chat sockets on picows, an open-loop sender, and the accounting.

It runs inside ``python -m bench.run`` (see that module) on uvloop, on its own
core. Each socket is a ``Member``: it authenticates with the session cookie,
joins its rooms, and from then on records, per room, every seq it receives
(for lost, duplicated and reordered counts) and every message's end-to-end
latency. The sender writes the message's *scheduled* send time into the text
(``repr(time.time())``), and the schedule is fixed before the first send
(open loop), so a server stall shows up as latency, not as a slower sender.
Per frame the work is one msgspec decode into a small Struct, two appends
and a float(): well over 50,000 frames/s on one core.

Frames that are not stored messages (replies, ``presence``, ``activity``,
``typing``, ``read``, ``mention``, notices) are never counted as deliveries:
each socket counts them and their bytes per kind (``Member.notices``), and
keeps each joined room's presence list as its frames describe it, with the
time of every change (``Member.presence_log``), for the storm scenario.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import msgspec
from picows import WSListener, WSMsgType, WSTransport, ws_connect

TEXT = WSMsgType.TEXT
CLOSE = WSMsgType.CLOSE
REPLY_TIMEOUT = 60.0
DRAIN_QUIET_S = 2.0  # no frame for this long after the last send: the missing are lost
DRAIN_LIMIT_S = 30.0  # give up waiting for the missing after this long in any case


class Present(msgspec.Struct):
    """One entry of a presence frame's ``members``."""

    username: str
    state: str


class Frame(msgspec.Struct):
    """The few fields of a server frame the load generator looks at (the rest are skipped)."""

    join: int | str | None = None
    error: str | None = None
    room: int | str | None = None
    seq: int | None = None
    message: str | None = None
    last_seq: int | None = None  # in a join reply
    presence: int | str | None = None
    full: bool = False
    members: list[Present] = []
    activity: msgspec.Raw = msgspec.Raw()  # not decoded: only counted
    typing: int | str | None = None
    read: int | str | None = None
    mention: int | str | None = None
    change: str | None = None  # an edit, deletion or reaction: numbered, but not a post


def kind(frame: Frame) -> str:
    """What a frame that is not a stored message is, for the per-kind counts."""
    if frame.presence is not None:
        return "presence"
    if frame.activity:
        return "activity"
    if frame.typing is not None:
        return "typing"
    if frame.read is not None:
        return "read"
    if frame.mention is not None:
        return "mention"
    if frame.change is not None:
        return "change"
    if frame.join is not None or frame.error is not None:
        return "reply"
    return "other"  # enter/leave notices, other replies


_decode = msgspec.json.Decoder(Frame).decode


class Tally:
    """What a group of sockets received since ``reset``: latencies in seconds and counts."""

    __slots__ = ("bytes", "errors", "last", "latencies", "received", "since")

    def __init__(self) -> None:
        self.errors: list[str] = []  # error codes received outside a join
        self.reset(since=0.0)

    def reset(self, *, since: float) -> None:
        """Start a step: forget latencies and counts; ignore messages scheduled before ``since``."""
        self.latencies: list[float] = []
        self.received = 0
        self.bytes = 0  # of the message frames received
        self.last = since  # receive time of the newest message frame
        self.since = since


class Member(WSListener):
    """One chat socket: records the seqs it receives per room and each message's latency."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.transport: WSTransport | None = None
        self.rooms: list[int] = []  # joined, in order
        self.seqs: dict[int | str, list[int]] = {}
        self.base: dict[int, int] = {}  # room -> last_seq in the join reply
        self.reply: asyncio.Future[Frame] | None = None
        self.watch: tuple[int | str, int, asyncio.Future[None]] | None = None
        self.notices: Counter[str] = Counter()  # frames that are not messages, per kind
        self.notice_bytes: Counter[str] = Counter()
        self.full_lists = 0  # presence frames with full: true
        self.presence: dict[int | str, dict[str, str]] = {}  # room -> username -> state
        self.presence_log: list[tuple[float, int | str, int]] = []  # (time, room, listed)
        self.close_code: int | None = None  # the server's close frame's code, if one came
        self.close_reason = ""  # and its reason
        self.closed_at: float | None = None  # when the socket went (time.time())
        # Upload ids to post with the next messages (fanout --files): one list per message.
        self.attachments: deque[list[str]] = deque()

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Keep the transport to send with."""
        self.transport = transport

    @property
    def closed(self) -> bool:
        """True once the socket is gone, whoever closed it."""
        return self.transport is not None and self.transport.is_disconnected

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """Note when the socket went; fail whoever waits on it."""
        self.closed_at = time.time()
        for waiter in (self.reply, self.watch and self.watch[2]):
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError("the server closed the socket"))

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        """Hand a text frame to ``on_text``; answer a close."""
        if frame.msg_type is not TEXT:
            if frame.msg_type is CLOSE:
                self.close_code = frame.get_close_code()
                self.close_reason = frame.get_close_message().decode(errors="replace")
                transport.send_close(self.close_code)
                transport.disconnect()
            return
        self.on_text(frame.get_payload_as_bytes(), time.time())

    def on_text(self, payload: bytes, now: float) -> None:
        """Record a message frame (the hot path), or count and apply any other frame."""
        parsed = _decode(payload)
        seq = parsed.seq
        if seq is None or parsed.room is None or parsed.change is not None:  # not a post
            found = kind(parsed)
            self.notices[found] += 1
            self.notice_bytes[found] += len(payload)
            if found == "presence":
                self._present(parsed, now)
            self._answer(parsed)
            return
        seqs = self.seqs.get(parsed.room)
        if seqs is None:
            seqs = self.seqs[parsed.room] = []
        seqs.append(seq)
        tally = self.tally
        tally.received += 1
        tally.bytes += len(payload)
        tally.last = now
        try:
            scheduled = float(parsed.message)
        except (TypeError, ValueError):  # not a timed message (a replayed one)
            pass
        else:
            if scheduled >= tally.since:
                tally.latencies.append(now - scheduled)
        if self.watch is not None:
            room, count, done = self.watch
            if parsed.room == room and len(seqs) >= count and not done.done():
                done.set_result(None)

    def _present(self, parsed: Frame, now: float) -> None:
        """Apply a presence frame to the room's list: the whole list, or its changes."""
        room = parsed.presence
        assert room is not None
        if parsed.full:
            self.full_lists += 1
            listed = self.presence[room] = {}
        else:
            listed = self.presence.setdefault(room, {})
        for entry in parsed.members:
            if entry.state == "offline":
                listed.pop(entry.username, None)
            else:
                listed[entry.username] = entry.state
        self.presence_log.append((now, room, len(listed)))

    def listed(self, room: int | str) -> int:
        """How many people (online or idle) the room's presence frames say are in it."""
        return len(self.presence.get(room, ()))

    def _answer(self, parsed: Frame) -> None:
        """A reply frame: hand it to the waiting join, or count the error."""
        if self.reply is not None and not self.reply.done():
            if parsed.join is not None or parsed.error is not None:
                self.reply.set_result(parsed)
        elif parsed.error is not None:
            self.tally.errors.append(parsed.error)

    def send(self, payload: bytes) -> None:
        """Send one text frame."""
        self.transport.send(TEXT, payload)

    def send_message(self, room: int, scheduled: float) -> None:
        """Post a message whose text is its scheduled send time (and the next attachments)."""
        if self.attachments:
            files = msgspec.json.encode(self.attachments.popleft())
            self.send(
                b'{"command":"send","room":%d,"message":"%r","files":%s}' % (room, scheduled, files)
            )
            return
        self.send(b'{"command":"send","room":%d,"message":"%r"}' % (room, scheduled))

    async def join(self, room: int, *, since: int | None = None) -> Frame:
        """Join ``room`` and wait for the reply; raise if it is refused."""
        self.reply = asyncio.get_running_loop().create_future()
        command = {"command": "join", "room": room}
        if since is not None:
            command["since"] = since
        self.send(msgspec.json.encode(command))
        try:
            reply = await asyncio.wait_for(self.reply, REPLY_TIMEOUT)
        finally:
            self.reply = None
        if reply.join is None:
            raise RuntimeError(f"join {room} was refused: {reply.error}")
        if since is not None:  # this socket expects every seq after since
            self.base[room] = since
        elif reply.last_seq is not None:
            self.base[room] = reply.last_seq
        if room not in self.rooms:
            self.rooms.append(room)
        return reply

    async def receive(self, room: int, count: int) -> None:
        """Wait until ``count`` messages of ``room`` are recorded (clear ``seqs[room]`` first)."""
        done = asyncio.get_running_loop().create_future()
        self.watch = (room, count, done)
        if len(self.seqs.get(room, ())) >= count:
            done.set_result(None)
        try:
            await asyncio.wait_for(done, REPLY_TIMEOUT)
        finally:
            self.watch = None

    def close(self) -> None:
        """Close the socket (without waiting)."""
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect()


class Connected(NamedTuple):
    """The sockets that joined (in order), the errors of those that never did, and retries."""

    members: list[Member]
    errors: list[str]
    retries: int


async def connect_members(
    url: str,
    joins: Iterable[tuple[str, Sequence[int] | Mapping[int, int]]],
    tally: Tally,
    *,
    concurrency: int = 200,
    retries: int = 2,
) -> Connected:
    """Open a socket per (session key, rooms) and join its rooms, ``concurrency`` at a time.

    ``rooms`` may map each room to a ``since``: the join resumes from it.

    A socket that fails (refused, closed by the server) is tried again up to
    ``retries`` times, as a client would reconnect; the retries are counted.
    """
    gate = asyncio.Semaphore(concurrency)
    retried = 0

    async def attempt(key: str, rooms: Sequence[int] | Mapping[int, int]) -> Member:
        async with gate:
            _, member = await ws_connect(
                lambda: Member(tally),
                url,
                extra_headers={"Cookie": f"sessionid={key}"},
                websocket_handshake_timeout=REPLY_TIMEOUT,
            )
            try:
                for room in rooms:
                    since = rooms[room] if isinstance(rooms, Mapping) else None
                    await member.join(room, since=since)
            except BaseException:
                member.close()
                raise
            return member

    async def one(key: str, rooms: Sequence[int] | Mapping[int, int]) -> Member:
        nonlocal retried
        for tries in range(retries):
            try:
                return await attempt(key, rooms)
            except Exception:
                retried += 1
                await asyncio.sleep(0.2 * (tries + 1))
        return await attempt(key, rooms)

    results = await asyncio.gather(*(one(k, r) for k, r in joins), return_exceptions=True)
    members = [m for m in results if isinstance(m, Member)]
    errors = [f"{type(e).__name__}: {e}" for e in results if not isinstance(e, Member)]
    return Connected(members, errors, retried)


def close_all(members: Iterable[Member]) -> None:
    """Close every socket."""
    for member in members:
        member.close()


async def send_on_schedule(schedule: Sequence[tuple[float, Member, int]]) -> float:
    """Send each (time, member, room) at its time, catching up in bursts; return the worst lag."""
    lag = 0.0
    i, n = 0, len(schedule)
    while i < n:
        now = time.time()
        if schedule[i][0] > now:
            await asyncio.sleep(schedule[i][0] - now)
            continue
        while i < n and schedule[i][0] <= now:
            scheduled, member, room = schedule[i]
            member.send_message(room, scheduled)
            lag = max(lag, now - scheduled)
            i += 1
        await asyncio.sleep(0)  # let the replies in between bursts
    return lag


async def drain(
    tally: Tally, *, expected: int, idle: float = DRAIN_QUIET_S, limit: float = DRAIN_LIMIT_S
) -> str:
    """Wait for ``expected`` message frames; say how the wait ended.

    "all" when they all came, "quiet" after ``idle`` s without a frame (the
    rest are lost), "limit" after ``limit`` s while frames still came (the
    rest may be late rather than lost).
    """
    started = time.time()
    while tally.received < expected:
        now = time.time()
        if now - max(tally.last, started) > idle:
            return "quiet"
        if now - started > limit:
            return "limit"
        await asyncio.sleep(0.05)
    return "all"


def seq_faults(received: Sequence[int], expected: range) -> tuple[int, int, int]:
    """(lost, duplicated, reordered) of the seqs one socket got in one room, against ``expected``.

    Seqs outside ``expected`` (a previous step's stragglers) are ignored. A seq
    counts as reordered when it arrives after a higher one, as duplicated when
    it arrives a second time, and as lost when it never arrives.
    """
    seen: set[int] = set()
    duplicated = reordered = 0
    highest = expected.start - 1
    for seq in received:
        if seq not in expected:
            continue
        if seq in seen:
            duplicated += 1
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        else:
            highest = seq
    return len(expected) - len(seen), duplicated, reordered


async def sample_peak(read, peak: list[int], *, every: float = 0.2) -> None:
    """Keep ``peak[0]`` at the highest ``read()``, sampled every ``every`` s, until cancelled."""
    while True:
        peak[0] = max(peak[0], read())
        await asyncio.sleep(every)
