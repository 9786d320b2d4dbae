"""The database not answering is an outage: SERVICE_UNAVAILABLE (or close 1013), never a 500.

Every wait on the database is bounded by the settings (connect, pool, check
and statement timeouts, config/settings.py), so a database that is down or
cut off raises one of ``DATABASE_ERRORS`` within seconds. This module turns
those into what clients are told: an error frame, a 503, or a refused
handshake, in one place for the socket, its middlewares and the REST API.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import psycopg
from asgiref.sync import SyncToAsync
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
from django import db

from chat import conf, metrics, protocol
from chat.errors import ChatError, ErrorCode

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Django wraps the driver's errors in its own; psycopg_pool's PoolTimeout and a
# failed checkout check can also surface as the driver's OperationalError.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    db.OperationalError,
    db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)

DETAIL = "The database does not answer; try again shortly."
NOT_STORED = "The database does not answer; nothing was stored. Try again shortly."


# The sockets' database calls run on these threads, side by side. Not on asgiref's
# one shared thread (channels' database_sync_to_async default): there one query
# stuck on a database that stopped answering would hold every handshake, join
# and history read of the process behind it. Each socket still awaits its own
# calls one at a time, so what one socket does keeps its order.
_threads = ThreadPoolExecutor(max_workers=conf.DATABASE_THREADS, thread_name_prefix="database")


def in_pool(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``func`` as a coroutine run on the database threads, old connections closed around it.

    Each call's outcome sets ``multichat_database_up`` (chat.metrics).

    What channels' ``database_sync_to_async`` does, without what asgiref adds
    for a generic caller (per call: its context copied back into the caller's,
    a task context kept for cancelling; about 60 µs of a connect's CPU):
    ``func`` runs in a copy of the caller's context, and a ``async_to_sync``
    in it finds the caller's loop. A call whose caller is cancelled runs on
    to its end in its thread, as there.
    """

    @functools.wraps(func)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        run = functools.partial(_in_thread, loop, func, args, kwargs)
        return await loop.run_in_executor(_threads, contextvars.copy_context().run, run)

    return call


def _in_thread(
    loop: asyncio.AbstractEventLoop, func: Callable[..., R], args: Any, kwargs: Any
) -> R:
    """Run ``func`` on a database thread as ``in_pool`` says."""
    # async_to_sync (a publish after a commit) runs its coroutine on the caller's loop.
    SyncToAsync.threadlocal.main_event_loop = loop
    SyncToAsync.threadlocal.main_event_loop_pid = os.getpid()
    db.close_old_connections()
    try:
        result = func(*args, **kwargs)
    except DATABASE_ERRORS:
        metrics.DATABASE_UP.set(0)
        raise
    finally:
        db.close_old_connections()
    metrics.DATABASE_UP.set(1)
    return result


def unavailable(exc: BaseException | type[BaseException], detail: str = DETAIL) -> ChatError:
    """The SERVICE_UNAVAILABLE error for a database failure ``exc`` (logged, without a trace)."""
    name = exc.__name__ if isinstance(exc, type) else type(exc).__name__
    metrics.database_failed()
    log.warning("The database does not answer: %s: %s", name, exc)
    return ChatError(ErrorCode.SERVICE_UNAVAILABLE, detail)


def guarded(func: Callable[P, R], detail: str = DETAIL) -> Callable[P, R]:
    """``func``, with a database failure raised as ChatError(SERVICE_UNAVAILABLE, detail)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DATABASE_ERRORS as exc:
            raise unavailable(exc, detail) from exc

    return wrapper


async def refuse_handshake(
    exc: BaseException, receive: ASGIReceiveCallable, send: ASGISendCallable
) -> None:
    """Answer a socket handshake the database could not serve: accept, say why, close 1013.

    Accepting first lets the client read the reason; 1013 (try again later)
    tells it to reconnect after a pause, not at once and not never.
    """
    metrics.socket_refused("database")
    error = unavailable(exc)
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client is already gone
    # asgiref's event types spell out the keys the ASGI spec lets a sender omit:
    # here each is given its spec default (no subprotocol, no extra headers, no reason).
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": protocol.error_frame(error)})
    await send({"type": "websocket.close", "code": protocol.CLOSE_TRY_AGAIN_LATER, "reason": None})
