"""Access re-checks: may each open socket keep its user, its session or token, and its rooms?

A live change (a demotion, a deactivation, a logout, a revoked token, a room
made staff-only) reaches the affected sockets as an event right after it
commits. Access must not depend on that event getting through: Redis may be
down when it is published, and then the event is gone. So every open socket
is also re-read from the database:

- when it opens, after it has subscribed to its user's changes (so a change
  committed between the handshake's read and the subscription is not missed);
- every CHAT_ACCESS_RECHECK_SECONDS;
- as soon as the channel layer comes back after an outage (the hub calls
  ``recheck_all``), when notices may have been lost.

One re-check reads the sockets of the process in a few queries per batch,
and each socket then applies the result in its own turn, with the same
frames as a live change.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, QuerySet
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from chat import conf, dbguard
from chat.compiled import Compiled
from chat.models import Room
from chat.permissions import ROOM_ACCESS_FIELDS, Account, RoomAccess, access_of, decide_manager

log = logging.getLogger(__name__)

BATCH = 500  # sockets read per round of queries

_DB_SESSION_ENGINES = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}

# Orders snapshots by when their read began: a socket never applies a snapshot
# older than one it has already applied (an older read could grant what a newer
# one took away).
_serials = itertools.count(1)


class SocketSession(Protocol):
    """The session a socket was opened with: a Django SessionStore, or api.auth.TokenSession.

    A kind of session other than Django's may also say which of its keys still
    hold (a ``live_keys`` static method) and why a socket ends when its key no
    longer does (an ``ended_detail`` attribute).
    """

    @property
    def session_key(self) -> str | None: ...

    def get(self, key: str) -> object: ...


class Socket(Protocol):
    """What a re-check needs from an open socket (chat.consumers.ChatConsumer)."""

    access: Credentials
    rooms: dict[int, int]

    def push(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a socket was opened with: its user, and the session (or token) that let it in."""

    user_id: int
    session: SocketSession | None
    session_hash: str | None  # the session's password hash at the handshake, if any


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The database's answer for a batch of sockets, read at one moment (``serial``)."""

    serial: int
    users: dict[int, Account]
    live_keys: frozenset[str]  # session (and token) keys that still let their sockets in
    rooms: dict[int, RoomAccess]  # the asked rooms that still exist, by id
    asked_rooms: frozenset[int]

    def room_gone(self, room_id: int) -> bool:
        """True if ``room_id`` was asked about and no longer exists."""
        return room_id in self.asked_rooms and room_id not in self.rooms


def read(credentials: Iterable[Credentials], room_ids: Iterable[int]) -> Snapshot:
    """Read the users, sessions, tokens and rooms that ``credentials`` and ``room_ids`` name."""
    serial = next(_serials)
    credentials = list(credentials)
    asked_rooms = frozenset(room_ids)
    key = _session_table_key(credentials[0].session) if len(credentials) == 1 else None
    if key is not None:
        users, live = _read_one(credentials[0].user_id, key)  # a socket's open: one query, not two
    else:
        users, live = _read_many(credentials)
    rooms = {}
    if asked_rooms:
        found = Room.objects.filter(pk__in=asked_rooms).only("id", *ROOM_ACCESS_FIELDS)
        rooms = access_of(found)
    return Snapshot(serial, users, frozenset(live), rooms, asked_rooms)


def _session_table_key(session: SocketSession | None) -> str | None:
    """The key of a Django session kept in the database's session table; None for any other."""
    if (
        session is None
        or hasattr(type(session), "live_keys")
        or settings.SESSION_ENGINE not in _DB_SESSION_ENGINES
    ):
        return None
    return session.session_key


def _user_and_session(pk: int, key: str) -> QuerySet[Any, Any]:
    """The user ``pk``, annotated with whether the session ``key`` is live (database clock)."""
    from django.contrib.sessions.models import Session

    live_session = Session.objects.filter(session_key=key, expire_date__gt=Now())
    return (
        get_user_model()
        ._default_manager.filter(pk=pk)
        .annotate(multichat_session_live=Exists(live_session))
    )


# Read at every socket's open: compiled once (chat.compiled).
_user_and_session_read = Compiled(_user_and_session, pk=-7, key="sample-session-key")


def _read_one(user_id: int, key: str) -> tuple[dict[int, Account], set[str]]:
    """The user, and whether its session ``key`` still holds, in one query."""
    found = _user_and_session_read.first_annotated(pk=user_id, key=key)
    if found is None:
        return {}, set()
    user, (live,) = found
    decide_manager(user)
    return {user.pk: user}, {key} if live else set()


def _read_many(credentials: list[Credentials]) -> tuple[dict[int, Account], set[str]]:
    """The users, and which of the sessions and tokens still hold: a query for each."""
    users = get_user_model()._default_manager.in_bulk({c.user_id for c in credentials})
    decide_manager(*users.values())
    live: set[str] = set()
    by_kind: dict[type, list[str]] = {}
    for c in credentials:
        key = getattr(c.session, "session_key", None)
        if key:
            by_kind.setdefault(type(c.session), []).append(key)
    for kind, keys in by_kind.items():
        # A credential kind other than Django's session says itself which of its keys
        # still hold (api.auth.TokenSession: tokens not revoked); chat knows no such kind.
        check = getattr(kind, "live_keys", None)
        live |= check(keys) if check is not None else _live_session_keys(keys)
    return users, live


def _live_session_keys(keys: list[str]) -> set[str]:
    """The Django sessions among ``keys`` that exist and have not expired."""
    if settings.SESSION_ENGINE in _DB_SESSION_ENGINES:
        from django.contrib.sessions.models import Session

        return set(
            Session.objects.filter(
                session_key__in=keys, expire_date__gt=timezone.now()
            ).values_list("session_key", flat=True)
        )
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore
    return {key for key in keys if store().exists(key)}


def session_hash_holds(user: Account, session_hash: str) -> bool:
    """True if ``session_hash`` is the user's, under SECRET_KEY or one of its fallbacks.

    As django.contrib.auth.get_user checks it: a password change makes every
    hash stale, a SECRET_KEY rotated with the old key as a fallback does not.
    """
    return constant_time_compare(session_hash, user.get_session_auth_hash()) or any(
        constant_time_compare(session_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    )


def refusal(snapshot: Snapshot, credentials: Credentials) -> str | None:
    """Why the socket must log in again, or None if its user and session still hold."""
    user = snapshot.users.get(credentials.user_id)
    if user is None or not user.is_active:
        return "Your account was disabled or removed."
    if credentials.session_hash and not session_hash_holds(user, credentials.session_hash):
        return "Your password changed; log in again."
    key = getattr(credentials.session, "session_key", None)
    if key is not None and key not in snapshot.live_keys:
        return getattr(
            credentials.session, "ended_detail", "Your session ended (logged out or expired)."
        )
    return None


async def read_for(sockets: list[Socket]) -> Snapshot:
    """Read a snapshot for ``sockets`` (their credentials and joined rooms) in a worker thread."""
    credentials = [s.access for s in sockets]
    room_ids = {room for s in sockets for room in s.rooms}
    snapshot: Snapshot = await dbguard.in_pool(read)(credentials, room_ids)
    return snapshot


class Rechecker:
    """Re-checks every registered socket of one event loop, periodically and on demand."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.sockets: set[Socket] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: Socket) -> None:
        """Re-check ``socket`` from now on; the periodic task runs while any socket is here."""
        self.sockets.add(socket)
        if self.task is None:
            self.task = self.loop.create_task(self._every_interval())

    def discard(self, socket: Socket) -> None:
        """Stop re-checking ``socket`` (it closed)."""
        self.sockets.discard(socket)

    async def _every_interval(self) -> None:
        try:
            while self.sockets:
                await asyncio.sleep(self.interval)
                await self.recheck_all()
        finally:
            self.task = None

    async def recheck_all(self) -> None:
        """Read every registered socket's access from the database and hand each its answer."""
        sockets = list(self.sockets)
        for start in range(0, len(sockets), BATCH):
            batch = sockets[start : start + BATCH]
            try:
                snapshot = await read_for(batch)
            except Exception as exc:
                # The database is down: nobody is let in anywhere new meanwhile (every join,
                # post and history reads it too); the next round tries again.
                log.warning("Re-checking socket access failed: %s", exc)
                return
            event = {"type": "access.recheck", "snapshot": snapshot}
            for socket in batch:
                if socket in self.sockets:
                    socket.push(event)


_current: Rechecker | None = None


def rechecker() -> Rechecker:
    """The running loop's re-checker (made on first use, and told of layer recoveries)."""
    global _current
    loop = asyncio.get_running_loop()
    if _current is None or _current.loop is not loop:
        from chat.hub import hub

        _current = Rechecker(loop, conf.CHAT_ACCESS_RECHECK_SECONDS)
        hub().on_recovery(_current.recheck_all)
    return _current
