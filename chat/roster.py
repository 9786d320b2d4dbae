"""Presence: who is in each room now (online or idle), across every server process.

A person is in a room while any of their sockets, on any process, has joined
it; they are ``idle`` there when every such socket said so (the ``presence``
command), else ``online``. Issue 15's per-person enter/leave notices can
read the same (chat.presence, this roster's ``listener``): ``Roster.holds``
says whether this process still has the user in the room, ``store().read``
whether any process has.

Each process keeps its own sockets in memory (a ``Roster`` per event loop,
like the hub) and writes each user's state per room to the store: Redis when
configured (``RedisStore``), this process's memory otherwise (``LocalStore``,
exact for the embedded single-process default). In Redis a room is one hash,
``{prefix}:roster:{room}``, with a field per user and process holding its
state, its expiry (wall-clock seconds) and the username. A process rewrites
its fields every CHAT_PRESENCE_REFRESH_SECONDS (N) with an expiry 3N ahead,
and re-reads the rooms it has sockets in, dropping fields past their expiry:
a killed process's users drop out within 4N (3N for their fields to expire,
N until the next re-read), plus the one-second coalescing below.

Between re-reads, each process's changes reach the others at once as one
event per room and write round (``presence.change``) on the room's presence
group, to which only rosters subscribe (one layer subscription per room and
process, not per socket). Sockets never see these events.

Frames: a change marks its user in its room; at most once per
CHAT_PRESENCE_COALESCE_SECONDS the roster builds, per changed room, one
``presence`` frame (``full: false``) of the users whose state differs from
what the room's sockets were last told, and hands it to the hub as a
droppable room event without seq: it goes out in order with the room's
messages, is encoded once for every local member, and is dropped for a
socket that is behind. A joining socket gets the room's whole list
(``full: true``) from ``enter``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Protocol, TypeVar, cast

import redis
from asgiref.sync import sync_to_async

from chat import conf, events, protocol, redisconn
from chat.hub import Hub

log = logging.getLogger(__name__)

ONLINE, IDLE, OFFLINE = "online", "idle", "offline"
CHANGE_TYPE = "presence.change"

# A room's entries: user id -> process -> (state, username).
Entries = dict[int, dict[str, tuple[str, str]]]
T = TypeVar("T")


def presence_group(room_id: int) -> str:
    """The layer group of a room's presence changes (rosters only, one per process)."""
    return f"chat.presence.{room_id}"


def room_key(prefix: str, room_id: int) -> str:
    """The Redis hash of a room's entries: a field ``{user}:{process}`` per user and process."""
    return f"{prefix}:roster:{room_id}"


def ttl() -> float:
    """How long a process's entry lives in Redis unless it is rewritten."""
    return 3 * float(conf.CHAT_PRESENCE_REFRESH_SECONDS)


# --- the store -----------------------------------------------------------------


class LocalStore:
    """Entries in this process's memory (no expiry: they die with the process)."""

    def __init__(self) -> None:
        self._rooms: dict[int, Entries] = {}
        self._lock = threading.Lock()

    def write(self, process: str, changes: Iterable[tuple[int, int, str, str]]) -> None:
        """Set (or, for OFFLINE, remove) each (room, user, username, state) of ``process``."""
        with self._lock:
            for room_id, user_id, username, state in changes:
                users = self._rooms.setdefault(room_id, {})
                if state == OFFLINE:
                    users.get(user_id, {}).pop(process, None)
                    if not users.get(user_id, True):
                        del users[user_id]
                else:
                    users.setdefault(user_id, {})[process] = (state, username)

    def read(self, room_ids: Iterable[int]) -> dict[int, Entries]:
        """The live entries of each room."""
        with self._lock:
            return {r: {u: dict(p) for u, p in self._rooms.get(r, {}).items()} for r in room_ids}


class RedisStore:
    """Entries in Redis, one hash per room, shared by every process on the same Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def _key(self, room_id: int) -> str:
        return room_key(self._prefix, room_id)

    def write(self, process: str, changes: Iterable[tuple[int, int, str, str]]) -> None:
        """Set (or, for OFFLINE, remove) each entry, expiring 3N from now; one round trip."""
        expires = time.time() + ttl()
        pipe = self._client.pipeline(transaction=False)
        for room_id, user_id, username, state in changes:
            key, name = self._key(room_id), f"{user_id}:{process}"
            if state == OFFLINE:
                pipe.hdel(key, name)
            else:
                pipe.hset(key, name, f"{state} {expires:.3f} {username}")
                pipe.expire(key, int(ttl()) + 1)
        pipe.execute()

    def read(self, room_ids: Iterable[int]) -> dict[int, Entries]:
        """The unexpired entries of each room; expired ones are deleted on the way."""
        rooms = list(room_ids)
        pipe = self._client.pipeline(transaction=False)
        for room_id in rooms:
            pipe.hgetall(self._key(room_id))
        now, found, stale = time.time(), {}, []
        for room_id, fields in zip(rooms, pipe.execute(), strict=True):
            users: Entries = {}
            for raw_name, raw_value in fields.items():
                name, value = raw_name.decode(), raw_value.decode()
                state, expires, username = value.split(" ", 2)
                if float(expires) <= now:
                    stale.append((room_id, raw_name))
                    continue
                user, process = name.split(":", 1)
                users.setdefault(int(user), {})[process] = (state, username)
            found[room_id] = users
        if stale:
            pipe = self._client.pipeline(transaction=False)
            for room_id, name in stale:
                pipe.hdel(self._key(room_id), name)
            pipe.execute()
        return found


_store: redisconn.PerConfiguration[LocalStore | RedisStore] = redisconn.PerConfiguration(
    RedisStore, LocalStore
)


def store() -> LocalStore | RedisStore:
    """The process's presence store for the current settings."""
    return _store.get()


def merged(entries: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(username, state) of one user from every process's entry: online beats idle."""
    best: tuple[str, str] | None = None
    for state, username in entries.values():
        if best is None or state == ONLINE:
            best = (username, state)
    return best


def _member(username: str, state: str) -> protocol.PresenceMember:
    return protocol.PresenceMember(username=username, state=cast(protocol.PresenceState, state))


def room_members(room_id: int) -> list[protocol.PresenceMember]:
    """Who is in the room now, on any process, by username (the REST members list)."""
    users = store().read([room_id])[room_id]
    found = [m for m in (merged(p) for p in users.values()) if m is not None]
    return [_member(u, s) for u, s in sorted(found)]


# --- one process's sockets ----------------------------------------------------------


class Listener(Protocol):
    """Told when a person's last socket here leaves a room, or another process's go."""

    def left(self, room_id: int, user_id: int, username: str) -> None: ...

    def vanished(self, room_id: int, user_id: int, username: str, *, expired: bool) -> None:
        """No process is seen holding the user in the room now (``expired``: by a re-read)."""

    async def keep(self, pairs: list[tuple[int, int]]) -> None:
        """The refresh rewrote this process's (room, user) entries."""


@dataclass(slots=True)
class _Local:
    """One user's sockets in one room on this process: socket -> active."""

    username: str
    sockets: dict[Any, bool] = field(default_factory=dict)

    def state(self) -> str:
        return ONLINE if any(self.sockets.values()) else IDLE


class Roster:
    """This process's sockets in rooms, the other processes' entries, and the frames."""

    def __init__(self, fanout: Hub, shared: LocalStore | RedisStore) -> None:
        self.hub = fanout
        self.loop = fanout.loop
        self.store = shared
        self.remote_enabled = isinstance(shared, RedisStore)
        self.process = uuid.uuid4().hex[:12]
        self.local: dict[int, dict[int, _Local]] = {}  # room -> user -> their sockets here
        self.remote: dict[int, Entries] = {}  # room -> the other processes' entries
        self.shown: dict[int, dict[int, tuple[str, str]]] = {}  # room -> what sockets were told
        self.ready: dict[int, asyncio.Future[None]] = {}  # room -> its first read is done
        self.reading: dict[int, list[dict[str, Any]]] = {}  # events that arrived during a read
        self.changed: dict[int, set[int]] = {}  # room -> users to put in the next frame
        self.outbox: dict[tuple[int, int], tuple[str, str]] = {}  # to write: username, state
        self.flusher: asyncio.TimerHandle | None = None
        self.last_flush = float("-inf")
        self.writer: asyncio.Task[None] | None = None
        self.refresher: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.listener: Listener | None = None  # chat.presence's enter/leave notices

    # --- what sockets call ------------------------------------------------------

    async def enter(
        self, room_id: int, sock: Any, *, user_id: int, username: str, active: bool
    ) -> list[protocol.PresenceMember]:
        """Count ``sock`` in the room; return who is there now (the ``full`` frame's list)."""
        while room_id not in self.local or not self.ready[room_id].done():
            await self._watch(room_id)
        entry = self.local[room_id].setdefault(user_id, _Local(username))
        before = entry.state() if entry.sockets else OFFLINE
        entry.sockets[sock] = active
        self._changed(room_id, user_id, username, before, entry.state())
        if len(self.local[room_id]) == 1 and len(entry.sockets) == 1:
            # The only local socket in the room: its full list says it all, no change to send.
            self.shown[room_id][user_id] = (username, entry.state())
        return self._listing(room_id)

    def leave(self, room_id: int, sock: Any, user_id: int) -> None:
        """``sock`` left the room (or ended); the room is dropped with its last local socket."""
        users = self.local.get(room_id)
        entry = users.get(user_id) if users is not None else None
        if users is None or entry is None or sock not in entry.sockets:
            return
        before = entry.state()
        del entry.sockets[sock]
        after = entry.state() if entry.sockets else OFFLINE
        if not entry.sockets:
            del users[user_id]
            if self.listener is not None:
                self.listener.left(room_id, user_id, entry.username)
        self._changed(room_id, user_id, entry.username, before, after)
        if not users:
            self._unwatch(room_id)

    def set_active(self, sock: Any, user_id: int, rooms: Iterable[int], active: bool) -> None:
        """The socket said it is active or idle: its user's state in its rooms may change."""
        for room_id in rooms:
            entry = self.local.get(room_id, {}).get(user_id)
            if entry is None or sock not in entry.sockets:
                continue
            before = entry.state()
            entry.sockets[sock] = active
            self._changed(room_id, user_id, entry.username, before, entry.state())

    def holds(self, room_id: int, user_id: int) -> bool:
        """True if a socket of ``user_id`` on this process is in the room."""
        return user_id in self.local.get(room_id, {})

    def state(self, room_id: int, user_id: int) -> tuple[str, str] | None:
        """(username, state) of the user in the room over every process; None if not there."""
        others = self.remote.get(room_id, {}).get(user_id)
        entry = self.local.get(room_id, {}).get(user_id)
        if not others:  # only here (or nowhere): no merge
            return None if entry is None else (entry.username, entry.state())
        entries = dict(others)
        if entry is not None:
            entries[self.process] = (entry.state(), entry.username)
        return merged(entries)

    def _listing(self, room_id: int) -> list[protocol.PresenceMember]:
        """Everyone in the room over every process, by username: a join's ``full`` list.

        Each join lists the whole room, so a room's joins cost its size squared:
        the users only here (most, on one process) are read straight from their entry.
        """
        local = self.local.get(room_id, {})
        remote = self.remote.get(room_id, {})
        found: list[tuple[str, str]] = []
        for user_id, entry in local.items():
            if user_id in remote:
                now = self.state(room_id, user_id)
                if now is not None:
                    found.append(now)
            else:
                found.append((entry.username, entry.state()))
        for user_id, others in remote.items():
            if user_id not in local and (now := merged(others)) is not None:
                found.append(now)
        found.sort(key=itemgetter(0))
        return [_member(username, state) for username, state in found]

    # --- what the hub calls (chat.hub.Member) -------------------------------------

    def push(self, event: dict[str, Any]) -> None:
        """Another process's changes in a room (ours come back too, and are skipped)."""
        if event.get("type") != CHANGE_TYPE or event["process"] == self.process:
            return
        room_id = event["room"]
        if room_id not in self.local:
            return
        buffered = self.reading.get(room_id)
        if buffered is not None:
            buffered.append(event)
        self._apply(event)

    def abort(self) -> None:
        """The hub could not hand the roster an event: the next re-read repairs the view."""
        log.warning("A presence event could not be applied; the next re-read repairs it")

    # --- inside ---------------------------------------------------------------------

    def _users(self, room_id: int) -> set[int]:
        return set(self.local.get(room_id, {})) | set(self.remote.get(room_id, {}))

    async def _watch(self, room_id: int) -> None:
        """Subscribe to the room's changes and read its entries (once per room; others wait)."""
        ready = self.ready.get(room_id)
        if ready is not None:
            await asyncio.shield(ready)
            return
        ready = self.ready[room_id] = self.loop.create_future()
        self.local[room_id] = {}
        self.remote[room_id] = {}
        try:
            if self.remote_enabled:
                await self.hub.add(presence_group(room_id), self)
                await self._reload([room_id])
                self._start_refresher()
        except Exception as exc:  # presence is best effort: the refresh reads it again
            log.warning("Reading the presence of room %s failed: %s", room_id, exc)
        finally:
            self.shown[room_id] = {
                u: s for u in self._users(room_id) if (s := self.state(room_id, u)) is not None
            }
            ready.set_result(None)

    def _unwatch(self, room_id: int) -> None:
        self.local.pop(room_id, None)
        self.remote.pop(room_id, None)
        self.shown.pop(room_id, None)
        self.ready.pop(room_id, None)
        self.changed.pop(room_id, None)
        if self.remote_enabled:
            self._keep(self.hub.discard(presence_group(room_id), self))

    async def _reload(self, rooms: list[int]) -> None:
        """Read the rooms' entries from the store and note every user whose state changed."""
        for room_id in rooms:
            self.reading[room_id] = []
        try:
            found = await self._call(self.store.read, rooms)
        finally:
            buffered = {room_id: self.reading.pop(room_id, []) for room_id in rooms}
        for room_id, users in found.items():
            if room_id not in self.local:
                continue
            before = {u: self.state(room_id, u) for u in self._users(room_id)}
            self.remote[room_id] = {
                u: others
                for u, p in users.items()
                if (others := {k: v for k, v in p.items() if k != self.process})
            }
            for event in buffered[room_id]:  # newer than the read: apply them again
                self._apply(event)
            for user in self._users(room_id) | set(before):
                now, was = self.state(room_id, user), before.get(user)
                if now != was:
                    self._mark(room_id, user)
                if now is None and was is not None and self.listener is not None:
                    self.listener.vanished(room_id, user, was[0], expired=True)

    def _apply(self, event: dict[str, Any]) -> None:
        room_id, process = event["room"], event["process"]
        users = self.remote.setdefault(room_id, {})
        for user_id, username, state in event["changes"]:
            if state == OFFLINE:
                users.get(user_id, {}).pop(process, None)
                if not users.get(user_id, True):
                    del users[user_id]
                    if self.listener is not None and not self.holds(room_id, user_id):
                        self.listener.vanished(room_id, user_id, username, expired=False)
            else:
                users.setdefault(user_id, {})[process] = (state, username)
            self._mark(room_id, user_id)

    def _changed(self, room_id: int, user_id: int, username: str, before: str, after: str) -> None:
        """This process's state of a user in a room went from ``before`` to ``after``."""
        if before == after:
            return
        self._mark(room_id, user_id)
        self.outbox[(room_id, user_id)] = (username, after)
        if self.writer is None:
            self.writer = self.loop.create_task(self._write())

    async def _write(self) -> None:
        """Write the outbox to the store and tell the other processes, until it is empty."""
        try:
            while self.outbox:
                batch, self.outbox = self.outbox, {}
                changes = [(r, u, name, state) for (r, u), (name, state) in batch.items()]
                try:
                    await self._call(self.store.write, self.process, changes)
                    if self.remote_enabled:
                        await self._announce(changes)
                except Exception as exc:  # the refresh writes every entry again
                    log.warning("Writing presence failed: %s", exc)
        finally:
            self.writer = None

    async def _announce(self, changes: list[tuple[int, int, str, str]]) -> None:
        by_room: dict[int, list[tuple[int, str, str]]] = {}
        for room_id, user_id, username, state in changes:
            by_room.setdefault(room_id, []).append((user_id, username, state))
        layer = self.hub.layer
        for room_id, room_changes in by_room.items():
            group = presence_group(room_id)
            event = {
                "type": CHANGE_TYPE,
                "group": group,
                "room": room_id,
                "process": self.process,
                "changes": room_changes,
            }
            await layer.group_send(group, event)

    def _mark(self, room_id: int, user_id: int) -> None:
        """Put the user in the room's next frame, sent within the coalescing window."""
        self.changed.setdefault(room_id, set()).add(user_id)
        if self.flusher is None:
            window = conf.CHAT_PRESENCE_COALESCE_SECONDS
            delay = max(0.0, self.last_flush + window - self.loop.time())
            self.flusher = self.loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        """One frame per changed room, of what differs from what its sockets were told."""
        self.flusher = None
        self.last_flush = self.loop.time()
        changed, self.changed = self.changed, {}
        for room_id, users in changed.items():
            shown = self.shown.get(room_id)
            if shown is None:
                continue  # no local socket left, or still reading
            members = []
            for user_id in sorted(users):
                now, was = self.state(room_id, user_id), shown.get(user_id)
                if now == was:
                    continue
                if now is None:
                    assert was is not None
                    del shown[user_id]
                    members.append(_member(was[0], OFFLINE))
                else:
                    shown[user_id] = now
                    members.append(_member(now[0], now[1]))
            if members:
                members.sort(key=lambda m: m.username)
                frame = protocol.PresenceEvent(presence=room_id, members=members, full=False)
                self.hub.deliver(events.notice_event(room_id, frame))

    def _start_refresher(self) -> None:
        if self.refresher is None:
            self.refresher = self.loop.create_task(self._refresh_every())

    async def _refresh_every(self) -> None:
        """Rewrite this process's entries and re-read its rooms, every refresh period."""
        while self.local:
            await asyncio.sleep(conf.CHAT_PRESENCE_REFRESH_SECONDS)
            rooms = list(self.local)
            mine = [
                (r, u, entry.username, entry.state())
                for r in rooms
                for u, entry in self.local.get(r, {}).items()
            ]
            try:
                if mine:
                    await self._call(self.store.write, self.process, mine)
                    if self.listener is not None:
                        await self.listener.keep([(r, u) for r, u, _, _ in mine])
                await self._reload([r for r in rooms if r in self.local])
            except Exception as exc:  # Redis is down: try again next period
                log.warning("Refreshing presence failed: %s", exc)
        self.refresher = None

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a store call: in a worker thread for Redis, in place for memory."""
        if self.remote_enabled:
            return await sync_to_async(function, thread_sensitive=False)(*args)
        return function(*args)

    def _keep(self, coroutine: Any) -> None:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def roster(fanout: Hub) -> Roster:
    """The roster of ``fanout``'s loop and the current presence store (made on first use)."""
    shared = store()
    found: Roster | None = vars(fanout).get("_chat_roster")
    if found is None or found.store is not shared:
        found = Roster(fanout, shared)
        vars(fanout)["_chat_roster"] = found
    return found
