"""The sockets' posts, stored in groups: one thread hop and one transaction for many posts.

A post from a socket used to cost a hop to a database thread, a pooled
connection's checkout check, its own commit (an fsync), and two hops back to
the event loop to publish (the message and the activity event). Here each
event loop has one ``Poster``: a post waits in its list, and whenever fewer
than GROUPS_IN_FLIGHT groups are being stored, the posts waiting at that
moment (at most GROUP_MAX, of rooms no group in flight holds) go to a
database thread together and are stored in one transaction by
``services.messages_send`` (the same rules and statements as message_send;
on PostgreSQL sent in one pipeline), in room order, so groups take the
rooms' row locks in one order and never deadlock.
After the commit the loop publishes what the services published, and only
then answers each sender; a room's next posts go in a group once that is done.
Under load the groups grow; a lone post waits for nothing.

What each sender is told is exactly what happened to its own post:

- a post refused by a rule (ChatError: access, length, type) is answered
  with that error; the others in the group are stored;
- the database failing the group (an outage, a statement timeout) rolls it
  all back: every post in it is answered SERVICE_UNAVAILABLE, nothing stored;
- any other failure rolls the group back and stores its posts again one by
  one, each in its own transaction, so only the post that fails is refused;
- a stored post whose event the layer does not take is answered
  SERVICE_UNAVAILABLE with its ``stored_seq``, like a single post.

Seqs: groups in flight never share a room, so a room's posts are stored and
published one group after the other, in seq order: this process's sockets
see no gap that its own publishing made.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from chat import dbguard, events, services
from chat.errors import ChatError, ErrorCode
from chat.models import Message

log = logging.getLogger(__name__)

Outcome = Message | BaseException  # a stored post, or why it was not stored (or not announced)


@dataclass(slots=True)
class _Waiting:
    """A post waiting for its group: message_send's arguments and the sender's future."""

    post: dict[str, Any]
    done: asyncio.Future[Message]


def store(posts: list[dict[str, Any]]) -> tuple[list[Outcome], events.Outbox]:
    """Store ``posts`` (message_send's arguments) in one transaction; what became of each.

    Runs on a database thread. The events the services publish are kept in
    the returned Outbox, for the loop to send (events.send_collected).
    """
    outcomes: list[Outcome] = []
    try:
        with events.collecting() as outbox:
            try:
                with transaction.atomic():
                    outcomes = list(services.messages_send(posts))
                    _refuse_aborted()
            except dbguard.DATABASE_ERRORS as exc:
                if not _retryable(exc):
                    _discard_connection()
                    refused = dbguard.unavailable(exc, dbguard.NOT_STORED)
                    return [refused] * len(posts), events.Outbox()
                log.info("Storing %d posts together failed (%s); one by one", len(posts), exc)
                outcomes = _one_by_one(posts)
            except Exception:
                log.warning(
                    "Storing %d posts together failed; one by one", len(posts), exc_info=True
                )
                outcomes = _one_by_one(posts)
    finally:
        _hand_back()
    return outcomes, outbox


def _hand_back() -> None:
    """Give this thread's connection back to the pool now (worker threads come and go).

    Never raises: the posts are stored (or not) already, and their senders must hear which.
    """
    try:
        connection.close()
    except Exception as exc:
        log.warning("Closing the database connection after posts failed: %s", exc)


def _discard_connection() -> None:
    """Close the thread's connection itself, so that the pool drops it instead of resetting it.

    After the database failed a group, the connection may be left inside the
    transaction on a link that no longer answers: handed back as it is, the
    pool would roll it back on one of its few worker threads, which would then
    wait on the dead link instead of opening the fresh connections everyone needs.
    """
    raw = connection.connection
    if raw is not None:
        try:
            raw.close()
        except Exception as exc:
            log.debug("Closing a failed connection: %s", exc)


def _one_by_one(posts: list[dict[str, Any]]) -> list[Outcome]:
    """Store each post in a transaction of its own, after their group failed and rolled back."""
    outcomes: list[Outcome] = []
    for post in posts:
        try:
            with transaction.atomic():
                outcome: Outcome = services.messages_send([post])[0]
                _refuse_aborted()
        except dbguard.DATABASE_ERRORS as exc:
            outcome = dbguard.unavailable(exc, dbguard.NOT_STORED)
        except Exception as exc:
            log.exception("Storing a post failed")
            outcome = exc
        outcomes.append(outcome)
    return outcomes


def _refuse_aborted() -> None:
    """Raise if PostgreSQL has aborted the transaction: its COMMIT would silently roll back.

    A refusal (ChatError) that some code raised after catching a database
    error would leave the transaction aborted while every other post looked stored.
    """
    if connection.vendor != "postgresql" or connection.connection is None:
        return
    from psycopg.pq import TransactionStatus  # only with PostgreSQL

    if connection.connection.info.transaction_status == TransactionStatus.INERROR:
        raise RuntimeError("The transaction was aborted by an error that was caught.")


def _retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the group may be stored again, one by one."""
    import psycopg.errors

    cause = exc.__cause__ or exc
    return isinstance(cause, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure)


# Groups being stored at once, and the most posts in one. PostgreSQL runs a group's
# statements one after another (about 1 ms each on this loaded 2-core machine) and
# then commits (an fsync, ~10 ms here), holding the group's rooms until then: small
# groups side by side, on rooms apart, keep that hold short and share their fsyncs.
# In the rooms benchmark (100 rooms) groups of 32 left rooms waiting on one long
# group each (87 posts/s of 500 offered, 2026-11-29). Fewer
# groups than the pool's connections (DATABASE_POOL_MAX, 10), so joins and history
# reads still get one.
GROUPS_IN_FLIGHT = 8
GROUP_MAX = 8


class Poster:
    """One event loop's posts, stored in groups, at most GROUPS_IN_FLIGHT at a time (``post``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: list[_Waiting] = []
        self.storing: dict[asyncio.Task[None], set[int]] = {}  # group in flight -> its rooms
        self.busy: set[int] = set()  # the rooms of the groups in flight

    async def post(self, **post: Any) -> Message:
        """message_send(**post) with the posts waiting now; returns once committed and published.

        Raises what message_send raises for this post, or ChatError
        SERVICE_UNAVAILABLE (with ``stored_seq`` if it was stored but not published).
        """
        done: asyncio.Future[Message] = self.loop.create_future()
        self.waiting.append(_Waiting(post, done))
        self._start()
        return await done

    def _start(self) -> None:
        """Send waiting posts to the database as groups, while fewer than the most are in flight.

        A group takes no room that a group in flight holds: two of this process's
        groups never wait on each other's row locks (a group holds its rooms' locks
        until its commit), and a room's posts are stored and published one group
        after the other, in seq order.
        """
        while self.waiting and len(self.storing) < GROUPS_IN_FLIGHT:
            group: list[_Waiting] = []
            rest: list[_Waiting] = []
            rooms: set[int] = set()
            for waiting in self.waiting:
                room = waiting.post["room_id"]
                if room in self.busy or len(group) >= GROUP_MAX:
                    rest.append(waiting)
                else:
                    group.append(waiting)
                    rooms.add(room)
            if not group:
                return  # every waiting post's room is being stored: it goes when that is done
            self.waiting = rest
            self.busy |= rooms
            task = self.loop.create_task(self._store(group))
            self.storing[task] = rooms
            task.add_done_callback(self._stored)

    def _stored(self, task: asyncio.Task[None]) -> None:
        """A group is answered: its rooms are free, and the posts that waited go next."""
        self.busy -= self.storing.pop(task)
        self._start()

    async def _store(self, group: list[_Waiting]) -> None:
        """Store one group, publish its events, and answer each sender."""
        try:
            outcomes, outbox = await dbguard.in_pool(store)([w.post for w in group])
            failed = await events.send_collected(outbox)
        except BaseException as exc:
            for waiting in group:
                if not waiting.done.done():
                    waiting.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # cancelled: the loop is going away
            log.exception("Storing %d posts failed", len(group))
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.done.done():
                continue  # the sender is gone (its socket closed)
            if isinstance(outcome, Message):
                if (outcome.room_id, outcome.seq) in failed:
                    waiting.done.set_exception(_unpublished(outcome))
                else:
                    waiting.done.set_result(outcome)
            else:
                waiting.done.set_exception(outcome)


def _unpublished(message: Message) -> ChatError:
    """The error of a post that was stored but whose event the layer did not take."""
    return ChatError(
        ErrorCode.SERVICE_UNAVAILABLE,
        f"Stored as seq {message.seq}, but live delivery is down: members get it when it is back.",
        stored_seq=message.seq,
    )


_posters: dict[asyncio.AbstractEventLoop, Poster] = {}


def poster() -> Poster:
    """The Poster of the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _posters.get(loop)
    if found is None:
        for stale in [other for other in _posters if other.is_closed()]:
            del _posters[stale]
        found = _posters[loop] = Poster(loop)
    return found
