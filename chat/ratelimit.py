"""Per-user command rate limits: a token bucket per command class, in Redis when configured.

Each class has its own budget: ``send`` (posts), ``join`` (join and leave
commands together), ``history`` (history pages, socket and REST),
``typing`` (typing notices), ``rooms`` (creating and renaming rooms) and
``upload`` (file uploads, each a few tens of ms of image work). With
Redis a bucket is shared by every server process (one atomic Lua call per
command); without it, each process keeps its own buckets, which is exact for
the embedded single-process default.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import redis

from chat import conf, redisconn

# KEYS[1] bucket; ARGV: rate (tokens/s), burst, now (s). Returns {allowed, retry_after_ms}.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, retry}
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one more command is allowed now, and if not, after how many seconds."""

    allowed: bool
    retry_after: float = 0.0


class LocalBuckets:
    """Token buckets in this process's memory."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, rate: float, burst: int) -> Verdict:
        """Take one token from ``key``'s bucket if there is one."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(burst), now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return Verdict(True)
            self._buckets[key] = (tokens, now)
            return Verdict(False, (1 - tokens) / rate)


class RedisBuckets:
    """Token buckets in Redis, shared by every process that uses the same Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._script = self._client.register_script(_LUA)
        self._prefix = prefix

    def take(self, key: str, *, rate: float, burst: int) -> Verdict:
        """Take one token from ``key``'s bucket if there is one (one round trip)."""
        allowed, retry_ms = self._script(
            keys=[f"{self._prefix}:ratelimit:{key}"], args=[rate, burst, time.time()]
        )
        return Verdict(bool(allowed), retry_ms / 1000)


_buckets: redisconn.PerConfiguration[LocalBuckets | RedisBuckets] = redisconn.PerConfiguration(
    RedisBuckets, LocalBuckets
)


def buckets() -> LocalBuckets | RedisBuckets:
    """The process's bucket store for the current settings."""
    return _buckets.get()


# Command class -> the names of its (rate per second, burst) settings.
COMMAND_CLASSES = {
    "send": ("CHAT_SEND_RATE", "CHAT_SEND_BURST"),
    "join": ("CHAT_JOIN_RATE", "CHAT_JOIN_BURST"),
    "history": ("CHAT_HISTORY_RATE", "CHAT_HISTORY_BURST"),
    "typing": ("CHAT_TYPING_RATE", "CHAT_TYPING_BURST"),
    "rooms": ("CHAT_ROOM_CREATE_RATE", "CHAT_ROOM_CREATE_BURST"),
    "upload": ("CHAT_UPLOAD_RATE", "CHAT_UPLOAD_BURST"),
}


# Command class -> what the refusal says was too fast.
TOO_FAST = {
    "send": "You are sending too fast",
    "join": "You are joining and leaving rooms too fast",
    "history": "You are asking for history too fast",
    "typing": "You are sending typing notices too fast",
    "rooms": "You are creating or renaming rooms too fast",
    "upload": "You are uploading files too fast",
}


def refusal(command_class: str, *, retry_after: float) -> str:
    """One sentence refusing a command: whole seconds to wait, rounded up (never "0 s")."""
    seconds = max(1, math.ceil(retry_after))
    return f"{TOO_FAST[command_class]}; try again in {seconds} s."


def take(user_id: int, command_class: str) -> Verdict:
    """Charge one ``command_class`` command to ``user_id``; a rate of 0 disables the class.

    A refusal's ``retry_after`` is rounded up to a tenth of a second, so a
    client that waits that long finds a token.
    """
    rate_setting, burst_setting = COMMAND_CLASSES[command_class]
    # Through chat.conf, so a project that embeds the chat and sets none of these gets the defaults.
    rate = getattr(conf, rate_setting)
    if rate <= 0:
        return Verdict(True)
    burst = getattr(conf, burst_setting)
    verdict = buckets().take(f"{command_class}:{user_id}", rate=rate, burst=burst)
    if verdict.allowed:
        return verdict
    # round() first: 0.3 * 10 is 3.0000000000000004, which must not become 0.4.
    tenths = max(1, math.ceil(round(verdict.retry_after * 10, 6)))
    return Verdict(False, tenths / 10)
