"""The REST API's request and response bodies, as the OpenAPI schema publishes them.

Message and history bodies are the socket's own frames (chat.protocol,
encoded by chat.protocol.encode); the models here describe them for OpenAPI
and the schemathesis tests check that the two agree.
"""

from __future__ import annotations

from django.conf import settings
from ninja import Schema
from pydantic import ConfigDict, Field, StrictInt, StrictStr

from chat.models import MsgType


class ErrorOut(Schema):
    """Every error: a code from the socket protocol (clients branch on it) and a sentence."""

    error: str = Field(examples=["ROOM_ACCESS_DENIED"])
    detail: str = Field(examples=["Room 2 is for staff only."])
    stored_seq: int | None = Field(
        default=None,
        description="SERVICE_UNAVAILABLE only: the message was stored as this seq "
        "and reaches members when live delivery is back; absent: nothing was stored.",
    )
    retry_after: float | None = Field(
        default=None,
        description="RATE_LIMITED only: seconds to wait before trying again (also Retry-After)",
    )


class MeOut(Schema):
    """The authenticated user."""

    id: int
    username: str
    is_staff: bool


class RoomOut(Schema):
    """A room the caller may enter; ``last_seq`` is the seq of its newest message."""

    id: int
    title: str
    staff_only: bool
    last_seq: int


class RoomsOut(Schema):
    """The rooms the caller may enter, by title."""

    rooms: list[RoomOut]


class MessageOut(Schema):
    """A stored message: the socket's message frame. ``deleted`` appears only when true."""

    msg_type: int = Field(description="0 message, 1 warning, 2 alert, 3 muted")
    room: int
    username: str
    message: str
    seq: int = Field(description="Per room, 1, 2, 3, ... with no gap")
    ts: str = Field(
        description="When it was stored, ISO 8601 UTC", examples=["2026-11-24T18:20:16.123Z"]
    )
    deleted: bool = False


class HistoryOut(Schema):
    """A page of history, oldest first: the socket's ``history`` reply."""

    history: int = Field(description="The room id")
    messages: list[MessageOut]
    has_more: bool = Field(description="True if older messages exist before this page")


# Python's str.isspace() characters, which str.strip() removes: a message made only of
# these (or empty) is blank. Spelled out rather than as `\s`, which every regex engine
# reads differently (ECMA adds U+FEFF and drops U+001C-U+001F and U+0085; validators
# that read it as ASCII drop U+00A0 and the rest), so that clients and schemathesis
# read the pattern exactly as message_send decides.
PYTHON_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
MESSAGE_PATTERN = rf"^[^\x00]*[^\x00{PYTHON_WHITESPACE}][^\x00]*$"


class MessageIn(Schema):
    """A message to post. The rules are the socket's; the schema describes them for clients.

    The constraints below are documentation: chat.services.message_send
    enforces them, so a message over the limit is MESSAGE_TOO_LONG, as on
    the socket, not a schema error.
    """

    model_config = ConfigDict(extra="forbid")

    message: StrictStr = Field(
        description="The text: not blank, no NUL character, at most the configured length",
        json_schema_extra={
            "minLength": 1,
            "maxLength": settings.CHAT_MESSAGE_MAX_LENGTH,
            "pattern": MESSAGE_PATTERN,
        },
    )
    msg_type: StrictInt = Field(
        default=MsgType.MESSAGE.value,
        description="0 message; staff only: 1 warning, 2 alert, 3 muted",
        json_schema_extra={"enum": [0, 1, 2, 3]},
    )
