"""Coalescing of enter/leave notices: join/leave spam reaches a room as one enter and one leave.

Members see a user's enter notice at most once per CHAT_PRESENCE_NOTICE_SECONDS
per room, and a leave notice only after an enter notice that no leave notice
has answered yet, so notices alternate (enter, leave, enter, ...) and each kind
is sent at most once per window. Notices are ephemeral (no seq): dropping one
changes no stored message and no delivery guarantee.

With Redis the state is shared by every server process (one call per notice);
without it, each process keeps its own, which is exact for the embedded
single-process default.
"""

from __future__ import annotations

import threading
import time

import redis
from django.conf import settings

from chat import redisconn

# How long "an enter notice was sent and not yet answered by a leave notice" is
# remembered: a user who stays longer than this leaves unannounced. Long enough
# for a working week of one open tab; bounded so keys of lost sockets go away.
SHOWN_SECONDS = 7 * 24 * 3600

# KEYS[1] enter window, KEYS[2] shown; ARGV: window (s), shown (s). Returns 1 to announce.
_ENTER_LUA = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  return 1
end
return 0
"""


class LocalPresence:
    """Notice state in this process's memory: key -> expiry (monotonic seconds)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> bool:
        until = self._until.get(key)
        if until is not None and until <= now:
            del self._until[key]
            return False
        return until is not None

    def _prune(self, now: float) -> None:
        if len(self._until) > 10_000:  # many users and rooms: drop what has expired
            self._until = {k: t for k, t in self._until.items() if t > now}

    def enter(self, key: str, *, window: int) -> bool:
        """True if this entry is to be announced (none was in the last ``window`` seconds)."""
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            if self._live(f"{key}:enter", now):
                return False
            self._until[f"{key}:enter"] = now + window
            self._until[f"{key}:shown"] = now + SHOWN_SECONDS
            return True

    def leave(self, key: str) -> bool:
        """True if this exit is to be announced (an announced entry is still unanswered)."""
        now = time.monotonic()
        with self._lock:
            shown = self._live(f"{key}:shown", now)
            self._until.pop(f"{key}:shown", None)
            return shown


class RedisPresence:
    """Notice state in Redis, shared by every process that uses the same Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._enter = self._client.register_script(_ENTER_LUA)
        self._prefix = prefix

    def enter(self, key: str, *, window: int) -> bool:
        """True if this entry is to be announced (none was in the last ``window`` seconds)."""
        full = f"{self._prefix}:presence:{key}"
        keys = [f"{full}:enter", f"{full}:shown"]
        return bool(self._enter(keys=keys, args=[window, SHOWN_SECONDS]))

    def leave(self, key: str) -> bool:
        """True if this exit is to be announced (an announced entry is still unanswered)."""
        return bool(self._client.delete(f"{self._prefix}:presence:{key}:shown"))


_store: redisconn.PerConfiguration[LocalPresence | RedisPresence] = redisconn.PerConfiguration(
    RedisPresence, LocalPresence
)


def store() -> LocalPresence | RedisPresence:
    """The process's notice state for the current settings."""
    return _store.get()


def should_announce_enter(*, user_id: int, room_id: int) -> bool:
    """Whether ``user_id`` entering ``room_id`` is told to its members (see the module)."""
    window = settings.CHAT_PRESENCE_NOTICE_SECONDS
    if window <= 0:
        return True
    return store().enter(f"{room_id}:{user_id}", window=window)


def should_announce_leave(*, user_id: int, room_id: int) -> bool:
    """Whether ``user_id`` leaving ``room_id`` is told to its members (see the module)."""
    if settings.CHAT_PRESENCE_NOTICE_SECONDS <= 0:
        return True
    return store().leave(f"{room_id}:{user_id}")
