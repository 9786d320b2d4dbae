"""Who a log line is about: request id, socket id, user id and room, per task.

The fields live in context variables, so each HTTP request and each socket
(one asyncio task each, and the threads that sync_to_async runs for them)
sees only its own; ``ContextFilter`` copies them onto every log record, where
the JSON formatter (LOG_FORMAT=json) prints them as fields. The plain format
does not show them.

The filter is also the last guard against logging what must never be
logged (docs/security.md): a message's text, a token, a password, a session
key. Fields with such names, passed as ``extra`` or inside a mapping
argument, are replaced by ``REDACTED`` before any handler sees them, and the
DEBUG wire traces of uvicorn and websockets (whole frames and headers) are
dropped whatever LOG_LEVEL says.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
socket_id: ContextVar[str | None] = ContextVar("socket_id", default=None)
user_id: ContextVar[int | None] = ContextVar("user_id", default=None)
room: ContextVar[int | str | None] = ContextVar("room", default=None)

FIELDS: dict[str, ContextVar[Any]] = {
    "request_id": request_id,
    "socket_id": socket_id,
    "user_id": user_id,
    "room": room,
}

# An incoming X-Request-ID is kept only if it looks like an id (a proxy's or
# a client's), so that nothing a client sends can forge a log line or grow it.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# Record fields (and keys of mapping arguments) that are never logged.
SECRET_NAMES = frozenset(
    {"text", "body", "content", "token", "password", "secret", "session_key", "sessionid",
     "authorization", "cookie", "frame"}
)  # fmt: skip
REDACTED = "[redacted]"

# Loggers whose DEBUG lines are wire traces: every header (the session cookie, a
# bearer token) and every frame whole (a message's text). Below INFO they are dropped.
WIRE_LOGGERS = ("uvicorn.error", "uvicorn.protocols", "websockets")


def new_id() -> str:
    """A fresh random id for a request or a socket (16 hex digits)."""
    return secrets.token_hex(8)


def sane_request_id(value: str | None) -> str:
    """``value`` if it is a sane id token, else a fresh id."""
    if value is not None and _SANE_ID.fullmatch(value):
        return value
    return new_id()


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Set context fields (names from ``FIELDS``) for the ``with`` block, then restore them."""
    tokens = [(FIELDS[name], FIELDS[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def _scrub(value: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy of ``value`` with the values of secret-named keys replaced."""
    return {k: REDACTED if str(k).lower() in SECRET_NAMES else v for k, v in value.items()}


class ContextFilter(logging.Filter):
    """Add the context fields to every record; redact secret-named fields, drop wire traces."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record`` in place; False (drop it) for a wire trace."""
        if record.levelno < logging.INFO and record.name.startswith(WIRE_LOGGERS):
            return False
        for name, var in FIELDS.items():
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        for name in SECRET_NAMES & record.__dict__.keys():
            setattr(record, name, REDACTED)
        args = record.args
        if isinstance(args, Mapping):
            record.args = _scrub(args)
        elif isinstance(args, tuple) and any(isinstance(a, Mapping) for a in args):
            record.args = tuple(_scrub(a) if isinstance(a, Mapping) else a for a in args)
        return True
