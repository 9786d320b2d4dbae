"""The chat socket, with reconnection and gap-free, duplicate-free resume.

One background task owns the connection. When it drops, the task waits
(exponential backoff with jitter) and reconnects, then re-joins every room
with ``since`` = the last seq it delivered for that room; the server replays
what came after. A room's seqs number its posts and the changes to them
(edits, deletions, reactions) in one stream, and every entry of it goes
through one filter, in arrival order: a seq at or below the last delivered
one is a duplicate and is dropped; a seq above the next one means a gap (a
replay longer than the server's CHAT_REPLAY_MAX), whose posts are filled
from the REST API first. So the iterator yields each room's posts and
changes in seq order, each exactly once.

Close 1013 (the server's database does not answer) is waited out with the
same backoff ("server unavailable, retrying"); close 4408 (this socket fell
behind) is resumed at once, since the server itself is fine. Close 1012 (the
server process is restarting) is reconnected after a delay drawn uniformly
from [0, window], the window the close reason names ("within N s"; 5 s if
it names none; ``restart_window`` overrides both), so that the sockets of a
whole process do not come back at the same instant; the server answered
every command it read before that close, so a command still waiting for
its reply was never read and is sent again on the next connection (a post
is stored once).

Every wait is "full jitter": uniform over [0, window], the window doubling
from ``min_delay`` up to ``max_delay`` (``backoff_delay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from multichat_client.errors import (
    AuthError,
    ConnectionLost,
    MultichatError,
    NotRead,
    token_refused,
)
from multichat_client.files import FileInfo
from multichat_client.messages import Change, Message
from multichat_client.messages import Reaction as Reaction  # still importable from here
from multichat_client.rest import RestClient, file_ids

CLOSE_SERVICE_RESTART = 1012  # the server process restarts; commands without a reply were not read
CLOSE_TRY_AGAIN_LATER = 1013  # the server's database does not answer: retry after a pause
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4408  # this socket fell behind: reconnect at once, resume with since
SOCKET_PATH = "/chat/stream/"
HISTORY_PAGE = 100


@dataclass(frozen=True)
class RoomError:
    """An error the server sent on its own, e.g. when it took the socket out of a room."""

    room: int | None
    code: str
    detail: str


@dataclass(frozen=True)
class JoinInfo:
    """The server's answer to a join; ``read_seq`` is the user's read position there.

    ``posts`` counts the room's posts (changes do not count), ``read_posts``
    the posts as of ``read_seq``: the user's unread count is their difference.
    """

    room: int
    title: str
    last_seq: int
    staff_only: bool
    read_seq: int = 0
    kind: str = "room"  # "direct": a direct conversation between ``members``
    members: tuple[str, ...] = ()
    posts: int = 0
    read_posts: int = 0

    @property
    def unread(self) -> int:
        """How many posts the user has not read in the room."""
        return max(0, self.posts - self.read_posts)


@dataclass(frozen=True)
class PresenceMember:
    """One person in a room: ``state`` is "online", "idle" or "offline" (left)."""

    username: str
    state: str


@dataclass(frozen=True)
class Presence:
    """Who is in a joined room: everyone after a join (``full``), then only who changed."""

    room: int
    members: tuple[PresenceMember, ...]
    full: bool


@dataclass(frozen=True)
class Typing:
    """``username`` is typing in ``room``; show it for ``expires_in`` seconds unless repeated."""

    room: int
    username: str
    expires_in: int


@dataclass(frozen=True)
class ReadMark:
    """The user's read position in ``room`` is now ``seq`` (read on any of their devices).

    ``posts``: the room's post count as of ``seq`` (unread = the room's posts - this).
    """

    room: int
    seq: int
    posts: int = 0


@dataclass(frozen=True)
class Mention:
    """A message in ``room`` mentions the user (``@name``, or staff's ``@room``)."""

    room: int
    seq: int
    id: int
    username: str
    message: str
    ts: str

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Mention:
        """The mention in a server frame (socket or GET /api/mentions)."""
        return cls(
            room=frame["mention"],
            seq=frame["seq"],
            id=frame["id"],
            username=frame["username"],
            message=frame["message"],
            ts=frame["ts"],
        )


@dataclass(frozen=True)
class RoomActivity:
    """A room's newest seq, its post count (changes do not count) and the user's unread mentions."""

    room: int
    last_seq: int
    mentions: int
    posts: int = 0


@dataclass(frozen=True)
class Activity:
    """Rooms the user may enter that changed since the last Activity (at most one a second)."""

    rooms: tuple[RoomActivity, ...]


Event = Message | Change | RoomError | Presence | Typing | ReadMark | Mention | Activity


def backoff_delay(attempt: int, *, min_delay: float, max_delay: float, rng: random.Random) -> float:
    """The wait before retry ``attempt`` (1 first): uniform over [0, window] ("full jitter").

    The window doubles from ``min_delay`` up to ``max_delay``. Drawing from
    the whole window (not its upper half) spreads clients that lost their
    server at the same instant the most, so they do not return together.
    """
    window = min(max_delay, min_delay * 2 ** (attempt - 1))
    return rng.uniform(0, window)


RESTART_WINDOW = 5.0  # seconds: the spread after 1012 when the server names none


def restart_window(reason: str | None) -> float:
    """The window a 1012 close reason names ("... within 20 s ..."), else RESTART_WINDOW."""
    found = re.search(r"within (\d+(?:\.\d+)?) s\b", reason or "")
    return float(found.group(1)) if found else RESTART_WINDOW


def socket_url(base_url: str) -> str:
    """The ws:// or wss:// URL of the chat socket under the server's http(s) base URL."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + SOCKET_PATH, "", ""))


class ChatClient:
    """An asyncio chat client that keeps its rooms joined across disconnections.

    Use it as ``async with ChatClient(url, token) as chat:``; ``join`` rooms,
    ``send`` to them (``edit``, ``delete``, ``react`` to their posts), and
    ``async for event in chat`` to receive Message, Change (an edit, deletion
    or reaction) and RoomError events; made with ``awareness=True``, also the
    awareness events: Presence and Typing for joined rooms, and ReadMark,
    Mention and Activity for every room the user may enter (code written
    before they existed never sees them). A refused token raises AuthError
    (from ``start``, a command, or the iterator); nothing else stops the
    client once it has connected: it reconnects until ``close``.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        min_delay: float = 0.5,
        max_delay: float = 30.0,
        open_timeout: float = 10.0,
        on_status: Callable[[str], None] | None = None,
        awareness: bool = False,
        restart_window: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.open_timeout = open_timeout
        # After close 1012, the reconnect comes uniformly within the window the server
        # names in the close reason (5 s if none); a number given here overrides it.
        self.restart_window = restart_window
        self.rng = rng or random.Random()  # the jitter's source (seed it to test the spread)
        self.resent = 0  # commands sent again because the server restarted before reading them
        self.on_status = on_status or (lambda text: None)
        self.awareness = awareness  # surface the awareness events (see the class docstring)
        self._idle = False  # said idle: said again after each reconnection
        self.rest = RestClient(self.url, token)
        self._last: dict[int, int] = {}  # room -> the last seq delivered
        self._rooms: set[int] = set()  # rooms to keep joined
        self._events: asyncio.Queue[Event | BaseException | None] = asyncio.Queue()
        self._pending: dict[str, tuple[asyncio.Future, int | None]] = {}
        self._refs = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._fatal: BaseException | None = None
        self._closed = False
        self._runner: asyncio.Task | None = None

    # --- life cycle ---------------------------------------------------------

    async def __aenter__(self) -> ChatClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect (the first attempt must succeed: a wrong URL or token fails here)."""
        ws = await self._open()
        self._runner = asyncio.create_task(self._run(ws))
        await self._wait_connected()

    async def close(self) -> None:
        """Disconnect and stop reconnecting; the event iterator ends."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._events.put_nowait(None)

    # --- commands -----------------------------------------------------------

    async def join(self, room: int, *, since: int | None = None) -> JoinInfo:
        """Join a room; with ``since``, first receive every message after that seq.

        The room stays joined across reconnections until ``leave``. ``since``
        counts only when the room is not joined yet (nothing is delivered twice).
        """
        room = int(room)
        self._rooms.add(room)
        reply = await self._command({"command": "join", "room": room}, since=since)
        return JoinInfo(
            room=reply["join"],
            title=reply["title"],
            last_seq=reply["last_seq"],
            staff_only=reply["staff_only"],
            read_seq=reply.get("read_seq", 0),
            kind=reply.get("kind", "room"),
            members=tuple(reply.get("members", ())),
            posts=reply.get("posts", 0),
            read_posts=reply.get("read_posts", 0),
        )

    async def leave(self, room: int) -> None:
        """Leave a room."""
        room = int(room)
        self._rooms.discard(room)
        self._last.pop(room, None)
        await self._command({"command": "leave", "room": room})

    async def send(
        self,
        room: int,
        message: str,
        *,
        msg_type: int = 0,
        reply_to: int | None = None,
        files: Iterable[str | FileInfo] = (),
    ) -> int:
        """Post to a joined room (``reply_to``: as an answer to that post); returns its seq.

        ``files``: uploads of yours not posted yet (FileInfo from ``upload``, or
        ids), attached in that order; ``message`` may then be "". FILE_INVALID
        (MultichatError): one is not yours, already posted or gone; nothing is posted.

        Sent again on the next connection if the server closed with 1012
        (restarting) before replying: it had not read it. Not retried on
        another dropped connection (ConnectionLost): the message may or may
        not have been stored, and the room's events will tell.
        A ``reply_to`` that is no post of the room (or a deleted one) raises
        MultichatError MESSAGE_INVALID.
        """
        frame: dict[str, Any] = {
            "command": "send",
            "room": int(room),
            "message": message,
            "msg_type": msg_type,
        }
        if reply_to is not None:
            frame["reply_to"] = int(reply_to)
        ids = file_ids(files)
        if ids:
            frame["files"] = ids
        return (await self._command(frame))["seq"]

    async def upload(
        self, source: str | os.PathLike[str] | BinaryIO, *, name: str | None = None
    ) -> FileInfo:
        """Upload a file for a later ``send`` (REST, streamed from disk: RestClient.upload)."""
        return await asyncio.to_thread(self.rest.upload, source, name=name)

    async def download(
        self, file: str | FileInfo, dest: str | os.PathLike[str] | BinaryIO, *, thumb: bool = False
    ) -> int:
        """Save a posted file to ``dest`` (see RestClient.download); returns the bytes written."""
        return await asyncio.to_thread(self.rest.download, file, dest, thumb=thumb)

    async def edit(self, room: int, seq: int, message: str) -> int | None:
        """Replace the text of your post ``seq``; returns the change's seq (None: no change).

        Refusals raise MultichatError: EDIT_DENIED (not yours, or the edit
        window is over), MESSAGE_INVALID (no such post, or it was deleted).
        Like ``send``, not retried on a dropped connection.
        """
        frame = {"command": "edit", "room": int(room), "seq": int(seq), "message": message}
        return (await self._command(frame)).get("seq")

    async def delete(self, room: int, seq: int) -> int | None:
        """Delete your post ``seq`` (staff: any); returns the change's seq.

        It stays as a tombstone; errors as for ``edit``.
        """
        frame = {"command": "delete", "room": int(room), "seq": int(seq)}
        return (await self._command(frame)).get("seq")

    async def react(self, room: int, seq: int, emoji: str, *, on: bool = True) -> int | None:
        """Put ``emoji`` on post ``seq`` (``on=False``: take it off); returns the change's seq.

        None when it was already so (nothing changed). MESSAGE_INVALID as for ``edit``.
        """
        frame = {"command": "react", "room": int(room), "seq": int(seq), "emoji": emoji, "on": on}
        return (await self._command(frame)).get("seq")

    async def history(
        self, room: int, *, before: int | None = None, limit: int | None = None
    ) -> tuple[list[Message], bool]:
        """A page of older messages (oldest first) and whether there are more."""
        frame: dict[str, Any] = {"command": "history", "room": int(room)}
        if before is not None:
            frame["before"] = before
        if limit is not None:
            frame["limit"] = limit
        reply = await self._command(frame)
        return [Message.from_frame(m) for m in reply["messages"]], reply["has_more"]

    async def typing(self, room: int) -> None:
        """Tell a joined room's other members that you are typing (repeat every few seconds).

        No reply: a refusal (RATE_LIMITED) arrives as a RoomError event.
        """
        await self._notify({"command": "typing", "room": int(room)})

    async def set_idle(self, idle: bool) -> None:
        """Say you are idle (no input for a while) or active again; rooms' members see it."""
        self._idle = idle
        await self._notify({"command": "presence", "state": "idle" if idle else "active"})

    async def read(self, room: int, seq: int) -> int:
        """Mark ``room`` read up to ``seq``; returns the stored position (it never moves back).

        Every socket of the user, this one included, also gets a ReadMark event.
        """
        return (await self._command({"command": "read", "room": int(room), "seq": seq}))["seq"]

    async def search(
        self,
        query: str,
        *,
        room: int | None = None,
        author: str | None = None,
        after: str | None = None,
        before: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Full-text search over the rooms the user may enter: results (newest first), next cursor.

        Each result is the message's fields with ``title`` (the room's) and
        ``snippet`` (HTML: the text escaped, the words found in <mark>).
        """
        frame: dict[str, Any] = {"command": "search", "query": query}
        filters = {"room": room, "author": author, "after": after, "before": before}
        frame.update({k: v for k, v in filters.items() if v is not None})
        if cursor is not None:
            frame["cursor"] = cursor
        if limit is not None:
            frame["limit"] = limit
        reply = await self._command(frame)
        return reply["search"], reply["next"]

    def mentions(
        self, *, before: int | None = None, limit: int | None = None
    ) -> tuple[list[Mention], bool]:
        """A page of the messages that mention the user (REST), newest first; and has_more."""
        page = self.rest.mentions(before=before, limit=limit)
        return [Mention.from_frame(m) for m in page["mentions"]], page["has_more"]

    def last_seq(self, room: int) -> int | None:
        """The last seq delivered for ``room`` (what a resume would pass as ``since``)."""
        return self._last.get(int(room))

    # --- events -------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the joined rooms, in order: each post and change exactly once."""
        while True:
            item = await self._events.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    # --- the connection -----------------------------------------------------

    async def _open(self) -> ClientConnection:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            return await connect(
                socket_url(self.url),
                additional_headers=headers,
                open_timeout=self.open_timeout,
                max_size=2**23,
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                error = AuthError("USER_HAS_TO_LOGIN", token_refused(self.url), status=status)
                raise error from None
            raise ConnectionLost(f"the server refused the socket with HTTP {status}") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise ConnectionLost(f"cannot reach {socket_url(self.url)}: {exc}") from None

    async def _run(self, ws: ClientConnection | None) -> None:
        attempt = 0
        try:
            while not self._closed:
                if ws is None:
                    try:
                        ws = await self._open()
                    except ConnectionLost as exc:
                        attempt += 1
                        await self._backoff(attempt, str(exc))
                        continue
                try:
                    await self._serve(ws)
                    attempt = 0
                except ConnectionLost as exc:
                    if self._closed:
                        return
                    code = ws.close_code
                    if code == CLOSE_SERVICE_RESTART:
                        # A planned restart: another process (or this one, back) takes the
                        # socket. Come back at a random moment of the window, not with all
                        # the others at once; later failures back off as usual.
                        attempt = 0
                        window = self.restart_window or restart_window(ws.close_reason)
                        await self._sleep(self.rng.uniform(0, window), "server restarting")
                        continue
                    if code == CLOSE_TOO_SLOW:
                        # Nothing is wrong with the server: resume at once (join with since).
                        attempt = 0
                        self.on_status("fell behind; reconnecting now")
                        continue
                    attempt += 1
                    if code == CLOSE_TRY_AGAIN_LATER:
                        await self._backoff(attempt, "server unavailable, retrying")
                    else:
                        await self._backoff(attempt, f"connection lost ({exc.detail})")
                finally:
                    ws = None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # AuthError, or a bug: stop, and tell everyone waiting
            self._fail(exc)

    async def _backoff(self, attempt: int, why: str) -> None:
        delay = backoff_delay(
            attempt, min_delay=self.min_delay, max_delay=self.max_delay, rng=self.rng
        )
        await self._sleep(delay, why)

    async def _sleep(self, delay: float, why: str) -> None:
        self.on_status(f"{why}; reconnecting in {delay:.1f} s")
        await asyncio.sleep(delay)

    async def _serve(self, ws: ClientConnection) -> None:
        """Re-join the rooms, then read until the connection drops (ConnectionLost)."""
        self._ws = ws
        reader = asyncio.create_task(self._read(ws))
        try:
            if self._idle:  # before the joins: the rooms see the state it had
                await ws.send(json.dumps({"command": "presence", "state": "idle"}))
            for room in sorted(self._rooms):
                await self._rejoin(room)
            self._connected.set()
            self.on_status("connected")
            await reader
        except ConnectionClosed as exc:
            raise ConnectionLost(str(exc)) from None
        finally:
            self._connected.clear()
            self._ws = None
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            self._drop_pending(ConnectionLost("the connection dropped"))
            with contextlib.suppress(Exception):
                await ws.close()

    async def _rejoin(self, room: int) -> None:
        while True:
            try:
                await self._command({"command": "join", "room": room}, connected=False)
                return
            except MultichatError as exc:
                if isinstance(exc, ConnectionLost):
                    raise
                if exc.code == "RATE_LIMITED":
                    # Many rooms, or quick reconnects, spent the join budget: wait, keep the room.
                    delay = exc.retry_after or 1.0
                    self.on_status(f"re-joining room {room} in {delay:.1f} s (rate limited)")
                    await asyncio.sleep(delay)
                    continue
                # The room went away or became staff-only while we were away.
                self._rooms.discard(room)
                self._last.pop(room, None)
                await self._events.put(RoomError(room=room, code=exc.code, detail=exc.detail))
                return

    async def _read(self, ws: ClientConnection) -> None:
        """Handle frames until the connection ends; then fail the commands still waiting."""
        error: BaseException
        try:
            async for text in ws:
                await self._handle(json.loads(text))
            error = ConnectionLost(f"closed by the server (code {ws.close_code})")
        except ConnectionClosed:
            error = ConnectionLost(f"closed (code {ws.close_code})")
        except AuthError as exc:
            error = exc
        if ws.close_code == CLOSE_UNAUTHENTICATED:
            error = AuthError("USER_HAS_TO_LOGIN", token_refused(self.url))
        elif ws.close_code == CLOSE_SERVICE_RESTART and not isinstance(error, AuthError):
            error = NotRead("the server restarted before reading the command")
        self._drop_pending(error)
        raise error

    def _drop_pending(self, error: BaseException) -> None:
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    async def _wait_connected(self) -> None:
        waiter = asyncio.create_task(self._connected.wait())
        assert self._runner is not None
        done, _ = await asyncio.wait({waiter, self._runner}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            raise self._fatal or ConnectionLost("the client stopped")

    async def _notify(self, frame: dict[str, Any]) -> None:
        """Send a command that has no reply on success."""
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise ConnectionLost("the client is closed")
        while (ws := self._ws) is None or not self._connected.is_set():
            # A connection that dropped before this task ran leaves the event set, then
            # cleared: wait again rather than fail a frame that was never sent.
            await self._wait_connected()
            if self._fatal is not None:
                raise self._fatal
            if self._closed:
                raise ConnectionLost("the client is closed")
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            raise ConnectionLost("the connection dropped") from None

    async def _command(
        self, frame: dict[str, Any], *, since: int | None = None, connected: bool = True
    ) -> dict[str, Any]:
        """Send a command with a fresh ref and wait for its reply (or its error)."""
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._closed:
                raise ConnectionLost("the client is closed")
            if connected:
                await self._wait_connected()
            ws = self._ws
            if ws is None:
                if connected:
                    # The connection came up and dropped again before this task ran (the
                    # event was set, then cleared): nothing was sent, so wait for the next.
                    continue
                raise ConnectionLost("not connected")
            ref = f"c{next(self._refs)}"
            future = asyncio.get_running_loop().create_future()
            self._pending[ref] = (future, since)
            if frame["command"] == "join":
                last = self._last.get(frame["room"]) if since is None else since
                frame = {k: v for k, v in frame.items() if k != "since"}
                if last is not None:
                    frame["since"] = last
            try:
                await ws.send(json.dumps({**frame, "ref": ref}))
            except ConnectionClosed:
                self._pending.pop(ref, None)
                if not future.done():
                    future.cancel()
                elif not future.cancelled():  # the reader failed it first: mark it read
                    future.exception()
                if connected and frame["command"] == "join":
                    continue  # joins are idempotent: retry on the next connection
                if connected and ws.close_code == CLOSE_SERVICE_RESTART:
                    continue  # the server was closing: the frame was never read
                raise ConnectionLost("the connection dropped") from None
            try:
                return await future
            except ConnectionLost as exc:
                if connected and frame["command"] == "join":
                    continue
                if connected and isinstance(exc, NotRead):
                    self.resent += 1
                    self.on_status(f"server restarting; sending {frame['command']} again")
                    continue
                raise

    # --- incoming frames ----------------------------------------------------

    async def _handle(self, frame: dict[str, Any]) -> None:
        ref = frame.get("ref")
        if isinstance(ref, str) and ref in self._pending:
            future, since = self._pending.pop(ref)
            if "error" in frame:
                if frame["error"] == "USER_HAS_TO_LOGIN":
                    raise AuthError(frame["error"], token_refused(self.url))
                error = MultichatError(
                    frame["error"],
                    frame.get("detail", ""),
                    stored_seq=frame.get("stored_seq"),
                    retry_after=frame.get("retry_after"),
                )
                if not future.done():
                    future.set_exception(error)
                return
            if "join" in frame:
                # Set before the next frame is read: replayed and live messages follow.
                # An explicit since counts only for a room not joined yet: never re-deliver.
                start = since if since is not None else frame["last_seq"]
                self._last.setdefault(frame["join"], start)
            if not future.done():
                future.set_result(frame)
            return
        if "error" in frame:
            if frame["error"] == "USER_HAS_TO_LOGIN":
                raise AuthError(frame["error"], token_refused(self.url))
            room = frame.get("room")
            if frame["error"] == "SERVICE_UNAVAILABLE" and room is None:
                # The handshake's refusal; close 1013 follows, and the client retries.
                self.on_status(f"server unavailable: {frame.get('detail', '')}")
                return
            if room is not None:
                self._rooms.discard(room)
                self._last.pop(room, None)
            await self._events.put(RoomError(room, frame["error"], frame.get("detail", "")))
        elif "msg_type" in frame:
            await self._deliver(Message.from_frame(frame))
        elif "change" in frame:
            await self._deliver(Change.from_frame(frame))
        elif self.awareness and frame.get("presence") in self._last:
            members = tuple(PresenceMember(m["username"], m["state"]) for m in frame["members"])
            await self._events.put(Presence(frame["presence"], members, frame["full"]))
        elif self.awareness and frame.get("typing") in self._last:
            await self._events.put(Typing(frame["typing"], frame["username"], frame["expires_in"]))
        elif self.awareness and "read" in frame:
            mark = ReadMark(room=frame["read"], seq=frame["seq"], posts=frame.get("posts", 0))
            await self._events.put(mark)
        elif self.awareness and "mention" in frame:
            await self._events.put(Mention.from_frame(frame))
        elif self.awareness and "activity" in frame:
            rooms = tuple(
                RoomActivity(
                    room=entry["room"],
                    last_seq=entry["last_seq"],
                    mentions=entry["mentions"],
                    posts=entry.get("posts", 0),
                )
                for entry in frame["activity"]
            )
            await self._events.put(Activity(rooms=rooms))

    async def _deliver(self, entry: Message | Change) -> None:
        """Hand on an entry of a room's stream (a post or a change) unless it is a duplicate.

        Posts and changes share the room's seqs, so both advance the room's last
        seq (what a resume passes as ``since``). A seq above the next one is a gap
        (a replay cut at CHAT_REPLAY_MAX): the entries between come first, from
        the REST stream: its posts as they are now and every change, so changes
        to posts the client already had are not lost.
        """
        room = entry.room
        last = self._last.get(room)
        if last is None:
            return  # not (or no longer) joined
        if entry.seq is None:  # an enter/leave notice: not in the stream
            await self._events.put(entry)
            return
        if entry.seq <= last:
            return
        if entry.seq > last + 1:
            for missed in await self._missing(room, last, entry.seq):
                await self._events.put(missed)
                assert missed.seq is not None  # the stream holds numbered entries only
                self._last[room] = missed.seq
        await self._events.put(entry)
        self._last[room] = entry.seq

    async def _missing(self, room: int, after: int, before: int) -> list[Message | Change]:
        """The room's stream with after < seq < before, from the REST API, in seq order."""
        found: list[Message | Change] = []
        cursor = after
        while cursor < before - 1:
            limit = min(HISTORY_PAGE, before - 1 - cursor)
            try:
                page = await asyncio.to_thread(self.rest.stream, room, after=cursor, limit=limit)
            except AuthError:
                raise
            except MultichatError as exc:
                raise ConnectionLost(f"could not fetch missed messages: {exc}") from None
            entries: list[Message | Change] = [Message.from_frame(m) for m in page["posts"]]
            entries.extend(Change.from_frame(c) for c in page["changes"])
            found.extend(sorted(entries, key=lambda e: e.seq or 0))
            if page["upto"] <= cursor or not page["has_more"]:
                break
            cursor = page["upto"]
        return [e for e in found if e.seq is not None and after < e.seq < before]

    def _fail(self, exc: BaseException) -> None:
        self._fatal = exc
        self._drop_pending(exc)
        self._events.put_nowait(exc)
