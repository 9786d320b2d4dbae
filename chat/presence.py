"""Enter/leave notices per person: "bob joined the room" once, "bob left the room" once.

A person enters a room when their first socket on any process joins it, and
leaves when their last one has gone, on every process, for
CHAT_PRESENCE_GRACE_SECONDS (G): a reconnect, a page reload, a second tab or
device, or a server restart whose sockets come back within G announces
nothing. Notices are ephemeral (no seq): a lost one changes no stored message.

What the room was told is one state per room and user (``NoticeStore``):
absent (not announced), ``in`` (an enter was announced), or ``out D`` (the
last socket left; the leave is due at wall-clock time D unless one comes
back). Every transition is one atomic step: a Lua script in Redis (so two
processes racing on one person decide once), a lock in memory otherwise.

- A process's first socket of a user in a room calls ``enter``: absent (or a
  leave overdue, never announced) -> ``in`` and an enter notice; else ``in``.
- Its last one calls ``left``: ``in`` -> ``out now+G``, and this process sets
  a timer (one asyncio timer per pending leave, not per socket).
- When the timer fires, ``settle``: if a socket of the user is still in the
  room on another process (its roster field in Redis has not expired), or the
  state is ``in`` again, nothing; if ``out D`` is due, it is deleted and this
  process announces the leave; if not yet due, the timer is set again.
- A process whose roster sees a user vanish from a room (another process's
  roster fields expired: it was killed; or its sockets left: it may stop
  before its own timer fires) settles too, later; the atomic delete makes the
  leave announced once. A killed process's users who do not come back are
  announced as gone within 4 x CHAT_PRESENCE_REFRESH_SECONDS (roster expiry)
  + G + 1 s, if a live process has sockets in the room to see it.

In Redis each state lives 3 x CHAT_PRESENCE_REFRESH_SECONDS + G + 1 s, and
every process holding the user renews it with its roster: a state left
behind by a killed process that nobody saw expires. Redis down: the call
fails, the notice is not sent (logged), the socket and its messages are not
affected.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import redis
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat import conf, events, protocol, redisconn, roster
from chat.models import MsgType

log = logging.getLogger(__name__)
T = TypeVar("T")

TEXT = {MsgType.ENTER: "joined the room", MsgType.LEAVE: "left the room"}
IN = "in"
# A watcher that saw another process's user go settles this much after the grace,
# so the process that saw the last socket go (when alive) settles first.
WATCH_SLACK = 1.0

# KEYS[1] the state; ARGV: now, expiry (s). Returns 1 to announce the entry.
_ENTER_LUA = """
local state = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], 'in', 'EX', ARGV[2])
if not state then return 1 end
if state == 'in' then return 0 end
if tonumber(string.sub(state, 5)) <= tonumber(ARGV[1]) then return 1 end
return 0
"""

# KEYS[1] the state, KEYS[2] the room's roster hash; ARGV: now, grace, expiry (s),
# the user's field prefix ("7:"), the caller's own field ("7:process").
# Returns "" (nothing to do), "0" (announce the leave) or seconds to wait, as a string.
_SETTLE_LUA = """
local state = redis.call('GET', KEYS[1])
if not state then return '' end
local now = tonumber(ARGV[1])
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local name = fields[i]
  if string.sub(name, 1, #ARGV[4]) == ARGV[4] and name ~= ARGV[5] then
    local expires = tonumber(string.match(fields[i + 1], '^%S+ (%S+)'))
    if expires and expires > now then return '' end
  end
end
local due
if state == 'in' then  -- nobody is left, and nobody had started the grace: start it
  due = now + tonumber(ARGV[2])
  redis.call('SET', KEYS[1], 'out ' .. due, 'EX', ARGV[3])
else
  due = tonumber(string.sub(state, 5))
end
if due > now then return tostring(due - now) end
redis.call('DEL', KEYS[1])
return '0'
"""


def grace() -> float:
    """How long a person's last socket may be gone before the room is told they left."""
    return float(conf.CHAT_PRESENCE_GRACE_SECONDS)


def _expiry() -> int:
    """Seconds a state lives in Redis unless a process holding the user renews it."""
    return math.ceil(roster.ttl() + grace() + 1)


class LocalNotices:
    """The states in this process's memory (exact for the embedded single-process default)."""

    def __init__(self) -> None:
        self._states: dict[tuple[int, int], float | None] = {}  # None: in; else due time
        self._lock = threading.Lock()

    def enter(self, room_id: int, user_id: int) -> bool:
        """The user's first socket here joined: True if the room is to be told."""
        with self._lock:
            key = (room_id, user_id)
            announce = key not in self._states or (self._states[key] or math.inf) <= time.time()
            self._states[key] = None
            return announce

    def left(self, room_id: int, user_id: int) -> float | None:
        """The user's last socket here left: seconds until the leave is due, None if unannounced."""
        with self._lock:
            if (room_id, user_id) not in self._states:
                return None
            self._states[(room_id, user_id)] = time.time() + grace()
            return grace()

    def settle(self, room_id: int, user_id: int, process: str) -> float | None:
        """None: nothing to do; 0: announce the leave (done once); else seconds to wait."""
        others = roster.store().read([room_id])[room_id].get(user_id, {})
        with self._lock:
            key = (room_id, user_id)
            if key not in self._states or set(others) - {process}:
                return None
            due, now = self._states[key], time.time()
            if due is None:  # nobody is left, and nobody had started the grace: start it
                due = self._states[key] = now + grace()
            if due > now:
                return due - now
            del self._states[key]
            return 0.0

    def keep(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Nothing to renew: memory states live as long as the process."""


class RedisNotices:
    """The states in Redis, shared by every process on the same Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._enter = client.register_script(_ENTER_LUA)
        self._settle = client.register_script(_SETTLE_LUA)

    def _key(self, room_id: int, user_id: int) -> str:
        return f"{self._prefix}:notice:{room_id}:{user_id}"

    def enter(self, room_id: int, user_id: int) -> bool:
        """The user's first socket here joined: True if the room is to be told."""
        args: list[str | int] = [f"{time.time():.3f}", _expiry()]
        return bool(self._enter(keys=[self._key(room_id, user_id)], args=args))

    def left(self, room_id: int, user_id: int) -> float | None:
        """The user's last socket here left: seconds until the leave is due, None if unannounced."""
        due = f"out {time.time() + grace():.3f}"
        found = self._client.set(self._key(room_id, user_id), due, xx=True, ex=_expiry())
        return grace() if found else None

    def settle(self, room_id: int, user_id: int, process: str) -> float | None:
        """None: nothing to do; 0: announce the leave (done once); else seconds to wait."""
        keys = [self._key(room_id, user_id), roster.room_key(self._prefix, room_id)]
        now = f"{time.time():.3f}"
        args: list[str | int] = [
            now,
            f"{grace():.3f}",
            _expiry(),
            f"{user_id}:",
            f"{user_id}:{process}",
        ]
        verdict = self._settle(keys=keys, args=args)
        return float(verdict) if verdict else None

    def keep(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Renew the states of users this process holds (one round trip)."""
        pipe = self._client.pipeline(transaction=False)
        for room_id, user_id in pairs:
            pipe.expire(self._key(room_id, user_id), _expiry())
        pipe.execute()


NoticeStore = LocalNotices | RedisNotices

_store: redisconn.PerConfiguration[NoticeStore] = redisconn.PerConfiguration(
    RedisNotices, LocalNotices
)


def store() -> NoticeStore:
    """The process's notice states for the current settings."""
    return _store.get()


def frame(*, room_id: int, username: str, msg_type: MsgType) -> protocol.MessageEvent:
    """The enter or leave notice of ``username`` in a room (no seq: not stored)."""
    return protocol.MessageEvent(
        msg_type=msg_type,
        room=room_id,
        username=username,
        message=TEXT[msg_type],
        ts=events.iso_utc(timezone.now()),
    )


class Notices:
    """One event loop's side of the notices: its roster's first/last sockets, and the timers."""

    def __init__(self, members: roster.Roster) -> None:
        self.roster = members
        self.loop = members.loop
        self.store = store()
        self.remote = isinstance(self.store, RedisNotices)
        self.timers: dict[tuple[int, int], asyncio.TimerHandle] = {}  # pending leaves
        self.tasks: set[asyncio.Task[None]] = set()

    async def entered(self, room_id: int, user_id: int, username: str) -> None:
        """The user's first socket on this process joined the room: announce if it is news."""
        if not conf.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS:
            return
        self._cancel(room_id, user_id)
        try:
            announce = await self._call(self.store.enter, room_id, user_id)
        except Exception as exc:  # ephemeral: no notice rather than an error to the client
            log.warning("Enter notice state unavailable, not announcing: %s", exc)
            return
        if announce:
            await self._publish(room_id, username, MsgType.ENTER)

    # --- what the roster calls (chat.roster.Listener) -----------------------------

    def left(self, room_id: int, user_id: int, username: str) -> None:
        """The user's last socket on this process left the room: the leave is due after G."""
        if conf.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS:
            self._spawn(self._leaving(room_id, user_id, username))

    def vanished(self, room_id: int, user_id: int, username: str, *, expired: bool) -> None:
        """Another process no longer has the user in the room: make sure the leave is told."""
        if conf.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS:
            # Expired: that process is gone and set no timer; settling now starts the grace.
            delay = 0.0 if expired else grace() + WATCH_SLACK
            self._schedule(room_id, user_id, username, delay)

    async def keep(self, pairs: list[tuple[int, int]]) -> None:
        """Renew the states of the users this process holds (the roster's refresh)."""
        if conf.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS and self.remote and pairs:
            await self._call(self.store.keep, pairs)

    # --- inside -------------------------------------------------------------------

    async def _leaving(self, room_id: int, user_id: int, username: str) -> None:
        try:
            wait = await self._call(self.store.left, room_id, user_id)
        except Exception as exc:
            log.warning("Leave notice state unavailable, not announcing: %s", exc)
            return
        if wait is not None:
            self._schedule(room_id, user_id, username, wait)

    def _schedule(self, room_id: int, user_id: int, username: str, delay: float) -> None:
        """A timer that settles the user's leave after ``delay`` (one per person and room)."""
        key = (room_id, user_id)
        if key in self.timers:
            self.timers[key].cancel()
        self.timers[key] = self.loop.call_later(delay, self._fire, room_id, user_id, username)

    def _cancel(self, room_id: int, user_id: int) -> None:
        timer = self.timers.pop((room_id, user_id), None)
        if timer is not None:
            timer.cancel()

    def _fire(self, room_id: int, user_id: int, username: str) -> None:
        self.timers.pop((room_id, user_id), None)
        if not self.roster.holds(room_id, user_id):  # back on this process: not gone
            self._spawn(self._settle(room_id, user_id, username))

    async def _settle(self, room_id: int, user_id: int, username: str) -> None:
        try:
            verdict = await self._call(self.store.settle, room_id, user_id, self.roster.process)
        except Exception as exc:
            log.warning("Leave notice state unavailable, not announcing: %s", exc)
            return
        if verdict is None:
            return
        if verdict == 0:  # the state is gone: tell the room, even if the user is back by now
            await self._publish(room_id, username, MsgType.LEAVE)
        elif not self.roster.holds(room_id, user_id):
            self._schedule(room_id, user_id, username, verdict)

    async def _publish(self, room_id: int, username: str, msg_type: MsgType) -> None:
        """Send the notice to the room's members on every process (a failure is logged)."""
        try:
            await events.publish_notice(
                room_id, frame(room_id=room_id, username=username, msg_type=msg_type)
            )
        except Exception as exc:
            log.warning("Could not send the %s notice to room %s: %s", TEXT[msg_type], room_id, exc)

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """A store call: in a worker thread for Redis, in place for memory."""
        if self.remote:
            return await sync_to_async(function, thread_sensitive=False)(*args)
        return function(*args)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def notices(members: roster.Roster) -> Notices:
    """The notices of ``members``' loop, attached as its listener (made on first use)."""
    found = members.listener
    if not isinstance(found, Notices) or found.store is not store():
        found = Notices(members)
        members.listener = found
    return found
