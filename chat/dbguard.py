"""The database not answering is an outage: SERVICE_UNAVAILABLE (or close 1013), never a 500.

Every wait on the database is bounded by the settings (connect, pool, check
and statement timeouts, config/settings.py), so a database that is down or
cut off raises one of ``DATABASE_ERRORS`` within seconds. This module turns
those into what clients are told: an error frame, a 503, or a refused
handshake, in one place for the socket, its middlewares and the REST API.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import psycopg
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
from django import db

from chat import protocol
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


def unavailable(exc: BaseException | type[BaseException], detail: str = DETAIL) -> ChatError:
    """The SERVICE_UNAVAILABLE error for a database failure ``exc`` (logged, without a trace)."""
    name = exc.__name__ if isinstance(exc, type) else type(exc).__name__
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
    error = unavailable(exc)
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client is already gone
    # asgiref's event types spell out the keys the ASGI spec lets a sender omit:
    # here each is given its spec default (no subprotocol, no extra headers, no reason).
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": protocol.error_frame(error)})
    await send({"type": "websocket.close", "code": protocol.CLOSE_TRY_AGAIN_LATER, "reason": None})
