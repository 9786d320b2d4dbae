"""Every frame of the chat socket, declared once; the REST API's bodies are derived from them.

Client frames are decoded here into typed commands (unknown fields are
rejected); server frames are msgspec Structs encoded by ``encode``. Nothing
else in the project builds a frame by hand. The REST API takes its request
and response bodies from the same Structs, and its OpenAPI components are
their generated JSON Schemas (api/schemas.py): the ``Meta`` annotations and
the one-line docstrings of those Structs are that documentation. The error
codes are in chat.errors. docs/protocol.md is the prose version of this module.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from chat.errors import ChatError, ErrorCode

# Close codes (docs/protocol.md lists what a client does after each).
CLOSE_INVALID_UTF8 = 1007  # sent by the ASGI server for a text frame that is not UTF-8
CLOSE_POLICY_VIOLATION = 1008
CLOSE_FRAME_TOO_LARGE = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013  # the database does not answer: reconnect after a pause
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4408  # the socket stayed behind too long: reconnect and join with since

MAX_ID = 2**63 - 1
MAX_ID_DIGITS = len(str(MAX_ID))  # 19: a longer digit string (past leading zeros) is out of range

# --- client -> server -----------------------------------------------------

Scalar = str | int | float | bool | None
IdValue = int | str


class Command(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every client command; ``ref`` is echoed on its replies."""

    name: ClassVar[str]
    command: str
    ref: Scalar | UnsetType = UNSET


class Join(Command):
    """Subscribe to a room; with ``since``, first replay what came after it."""

    name = "join"
    room: Any
    since: IdValue | None = None


class Leave(Command):
    """Unsubscribe from a room."""

    name = "leave"
    room: Any


# Python's str.isspace() characters, which str.strip() removes: a message made only of
# these (or empty) is blank. Spelled out rather than as `\s`, which every regex engine
# reads differently (ECMA adds U+FEFF and drops U+001C-U+001F and U+0085; validators
# that read it as ASCII drop U+00A0 and the rest), so that clients and schemathesis
# read the pattern exactly as chat.services.message_send decides.
PYTHON_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
MESSAGE_PATTERN = rf"^[^\x00]*[^\x00{PYTHON_WHITESPACE}][^\x00]*$"
# Control characters: C0, DEL and C1.
_CONTROL = r"\x00-\x1f\x7f-\x9f"

# The fields of a post, shared by the socket's ``send`` and the REST body. The schema
# keywords are documentation only: chat.services.message_send enforces the rules, so that
# a message over the limit is MESSAGE_TOO_LONG, and a blank one without files
# BAD_REQUEST, not a schema error.
PostedType = Annotated[
    int,
    Meta(
        description="0 message; staff only: 1 warning, 2 alert, 3 muted",
        extra_json_schema={"enum": [0, 1, 2, 3]},
    ),
]


# An edit's text. Blank only when the post has files: the schema says what holds for most
# posts, chat.services.message_edit decides.
MessageText = Annotated[
    str,
    Meta(
        description="The text: not blank (unless the post has files), no NUL character, at "
        "most the configured length",
        extra_json_schema={"minLength": 1, "pattern": MESSAGE_PATTERN},
    ),
]
# A post's text: blank only when it has files (api.schemas publishes that rule for the REST
# body as an ``anyOf``).
PostText = Annotated[
    str,
    Meta(
        description="The text (may be empty when `files` is not): no NUL character, at most "
        "the configured length",
        extra_json_schema={"pattern": r"^[^\x00]*$"},
    ),
]
FileIds = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=32)]],
    Meta(
        max_length=100,
        description="Ids of your uploads (POST /api/uploads) not yet posted, each once, at "
        "most CHAT_UPLOAD_MAX_FILES; they are shown in upload order",
        extra_json_schema={"uniqueItems": True},
    ),
]

ReplyTo = (
    Annotated[
        int,
        Meta(ge=1, le=MAX_ID, description="The seq of the post in the same room that it answers"),
    ]
    | None
)


class Send(Command):
    """Post a message to a joined room (optionally as a reply to one of its posts)."""

    name = "send"
    room: Any
    message: PostText
    msg_type: PostedType = 0
    reply_to: ReplyTo = None
    files: FileIds = []


class NewMessage(Struct, forbid_unknown_fields=True, kw_only=True):
    """A message to post: the REST body, the fields of ``send`` without command, room and ref."""

    message: PostText
    msg_type: PostedType = 0
    reply_to: ReplyTo = None
    files: FileIds = []


class Edit(Command):
    """Replace the text of your own post (within CHAT_EDIT_WINDOW_SECONDS, if set)."""

    name = "edit"
    room: Any
    seq: IdValue
    message: MessageText


class EditBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """The REST body that edits a post: ``edit`` without command, room, seq and ref."""

    message: MessageText


class Delete(Command):
    """Delete your own post (staff: any post); it stays as a tombstone with no text."""

    name = "delete"
    room: Any
    seq: IdValue


# A reaction: an emoji ("👍", "🇩🇪", "👩🏽‍💻") or a short word ("+1"), as people react in Zulip.
# No whitespace, no control character and no bidi control (which could flip the text around
# it); at most 16 characters. chat.services.message_react checks exactly this pattern.
_BIDI = r"\u200e\u200f\u202a-\u202e\u2066-\u2069"
EMOJI_MAX_LENGTH = 16
EMOJI_PATTERN = rf"^[^{_CONTROL}{PYTHON_WHITESPACE}{_BIDI}]+$"
Emoji = Annotated[
    str,
    Meta(
        description="The reaction: an emoji, or a short word; no spaces or control characters",
        extra_json_schema={"minLength": 1, "maxLength": EMOJI_MAX_LENGTH, "pattern": EMOJI_PATTERN},
    ),
]


class React(Command):
    """Put your ``emoji`` on a post (``on`` true) or take it off (false)."""

    name = "react"
    room: Any
    seq: IdValue
    emoji: Emoji
    on: bool = True


class ReactBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """The REST body that reacts to a post: ``react`` without command, room, seq and ref."""

    emoji: Emoji
    on: Annotated[bool, Meta(description="true: put it on; false: take it off")] = True


# A room's title, as users give it (chat.rooms checks it; the schema keywords document it).
# No control character (C0, DEL, C1) anywhere, and not blank.
TITLE_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{PYTHON_WHITESPACE}][^{_CONTROL}]*$"
RoomTitle = Annotated[
    str,
    Meta(
        description="The title: not blank, no control character, at most the configured length",
        extra_json_schema={"minLength": 1, "pattern": TITLE_PATTERN},
    ),
]


class NewRoom(Struct, forbid_unknown_fields=True, kw_only=True):
    """The REST body that creates a room (when CHAT_USERS_CREATE_ROOMS allows, or as staff)."""

    title: RoomTitle
    staff_only: Annotated[bool, Meta(description="Only staff may see and enter it; staff only")] = (
        False
    )


class NewDirect(Struct, forbid_unknown_fields=True, kw_only=True):
    """The REST body that opens a direct conversation: the other people in it, by username."""

    users: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=150)]],
        Meta(
            min_length=1,
            max_length=100,
            description="Usernames (you may be among them; only you: notes to self)",
        ),
    ]


class RoomRename(Struct, forbid_unknown_fields=True, kw_only=True):
    """The REST body that renames a room (its creator, or staff)."""

    title: RoomTitle


class History(Command):
    """Ask for the page of messages before ``before`` (default: the newest page)."""

    name = "history"
    room: Any
    before: IdValue | None = None
    limit: int | None = None


class Read(Command):
    """Report the highest seq read in a room; every socket of the user learns the stored one."""

    name = "read"
    room: Any
    seq: IdValue


class ReadBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """The REST body that marks a room read: ``read`` without command, room and ref."""

    seq: Annotated[int, Meta(ge=0, le=MAX_ID, description="The highest seq read")]


COMMANDS: dict[str, type[Command]] = {
    cls.name: cls for cls in (Join, Leave, Send, History, Read, Edit, Delete, React)
}


class Typing(Command):
    """Tell a joined room's other members that you are typing; no reply on success."""

    name = "typing"
    room: Any


class SetPresence(Command):
    """Say whether you are active or idle (in every room this socket joined); no reply."""

    name = "presence"
    state: Literal["active", "idle"]


class Ping(Command):
    """A client heartbeat: is the socket alive both ways? ``pong`` answers; never rate limited."""

    name = "ping"


COMMANDS.update({cls.name: cls for cls in (Typing, SetPresence, Ping)})

SEARCH_QUERY_MAX_LENGTH = 200
SEARCH_PAGE_SIZE = 20
SEARCH_MAX_PAGE_SIZE = 50


class Search(Command):
    """Full-text search over every room the user may enter, newest first (chat.search)."""

    name = "search"
    query: Annotated[
        str,
        Meta(
            description='Words to find: "a phrase", -excluded, `or`; at most '
            f"{SEARCH_QUERY_MAX_LENGTH} characters"
        ),
    ]
    room: Any = None
    author: str | None = None
    after: str | None = None
    before: str | None = None
    cursor: str | None = None
    limit: int | None = None


COMMANDS[Search.name] = Search


def _parse_int(value: Any, *, field: str, code: ErrorCode, minimum: int) -> int:
    """Return ``value`` (a JSON number or numeric string) as an int, or raise ``code``."""
    if isinstance(value, bool):
        raise ChatError(code, f"`{field}` must be a whole number, not a boolean.")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        digits = value.strip().lstrip("0") or "0"
        if len(digits) > MAX_ID_DIGITS:  # before int(): Python refuses over 4,300 digits
            raise ChatError(code, f"`{field}` must be between {minimum} and {MAX_ID}.")
        value = int(digits)
    if not isinstance(value, int):
        raise ChatError(code, f"`{field}` must be a whole number or a numeric string.")
    if not minimum <= value <= MAX_ID:
        raise ChatError(code, f"`{field}` must be between {minimum} and {MAX_ID}.")
    return value


def parse_room_id(value: Any) -> int:
    """Return a room id, or raise ROOM_INVALID for anything that is not one."""
    return _parse_int(value, field="room", code=ErrorCode.ROOM_INVALID, minimum=1)


def parse_seq(value: Any, *, field: str) -> int:
    """Return a seq (0 or more), or raise BAD_REQUEST."""
    return _parse_int(value, field=field, code=ErrorCode.BAD_REQUEST, minimum=0)


def peek_ref(obj: Any) -> Scalar | UnsetType:
    """The ``ref`` of a decoded frame, if it carries a valid one, so errors can echo it."""
    if isinstance(obj, dict) and "ref" in obj:
        ref = obj["ref"]
        if ref is None or isinstance(ref, str | int | float | bool):
            return ref
    return UNSET


_decoder = msgspec.json.Decoder()


def decode_frame(text: str) -> dict[str, Any]:
    """Decode one client text frame into a JSON object, or raise BAD_REQUEST."""
    try:
        obj = _decoder.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ChatError(ErrorCode.BAD_REQUEST, f"The frame is not valid JSON: {exc}.") from None
    except RecursionError:  # msgspec's answer to arrays or objects nested too deep
        raise ChatError(ErrorCode.BAD_REQUEST, "The frame is nested too deeply.") from None
    if not isinstance(obj, dict):
        raise ChatError(ErrorCode.BAD_REQUEST, "A frame must be a JSON object.")
    return obj


def parse_command(obj: dict[str, Any]) -> Command:
    """Validate a decoded frame against its command's schema, or raise ChatError."""
    if "ref" in obj and peek_ref(obj) is UNSET:
        raise ChatError(ErrorCode.BAD_REQUEST, "`ref` must be a string, number, boolean or null.")
    name = obj.get("command")
    if name is None:
        raise ChatError(ErrorCode.BAD_REQUEST, "A frame must have a `command` field.")
    if not isinstance(name, str):
        raise ChatError(ErrorCode.BAD_REQUEST, "`command` must be a string.")
    cls = COMMANDS.get(name)
    if cls is None:
        known = ", ".join(COMMANDS)
        raise ChatError(
            ErrorCode.UNKNOWN_COMMAND, f"Unknown command {name[:40]!r}; use one of {known}."
        )
    try:
        return msgspec.convert(obj, cls)
    except msgspec.ValidationError as exc:
        raise ChatError(ErrorCode.BAD_REQUEST, f"Invalid `{name}` frame: {exc}.") from None


# --- server -> client -----------------------------------------------------


class Frame(Struct, omit_defaults=True, kw_only=True):
    """Base of every server frame. Replies end with the command's ``ref``, if it had one."""


PostCount = Annotated[
    int, Meta(description="How many posts the room has had (changes to posts do not count)")
]
ReadPosts = Annotated[
    int, Meta(description="The room's post count as of read_seq: unread = posts - read_posts")
]
RoomKindName = Annotated[
    Literal["room", "direct"],
    Meta(description='"room": a room; "direct": a direct conversation between its members'),
]
MemberNames = Annotated[
    list[str],
    Meta(description="A direct conversation's members (usernames, sorted, you included)"),
]


class JoinReply(Frame, kw_only=True):
    """Join accepted. ``replayed`` events (posts and changes) with seq > since follow this frame."""

    join: int
    title: str
    last_seq: int
    staff_only: bool
    kind: RoomKindName
    members: MemberNames | UnsetType = UNSET
    replayed: int
    truncated: bool
    read_seq: Annotated[int, Meta(description="The user's read position in the room; 0 if none")]
    posts: PostCount
    read_posts: ReadPosts
    ref: Scalar | UnsetType = UNSET


class LeaveReply(Frame, kw_only=True):
    """Leave accepted."""

    leave: int
    ref: Scalar | UnsetType = UNSET


class SentReply(Frame, kw_only=True):
    """A ``send`` that carried a ``ref`` was stored as ``seq``."""

    sent: int
    seq: int
    ref: Scalar | UnsetType = UNSET


class ChangedReply(Frame, kw_only=True):
    """An ``edit``, ``delete`` or ``react`` that carried a ``ref`` was stored as change ``seq``."""

    changed: Annotated[int, Meta(description="The room id")]
    seq: Annotated[
        int | None,
        Meta(description="The change's own seq in the room's stream; absent: nothing changed"),
    ] = None
    ref: Scalar | UnsetType = UNSET


class PongReply(Frame, kw_only=True):
    """The answer to ``ping``: the socket works both ways."""

    pong: Literal[True]
    ref: Scalar | UnsetType = UNSET


class ReactionSummary(Struct, kw_only=True):
    """One emoji on a post, and who put it there (in the order they did)."""

    emoji: str
    users: list[str]


class FileInfo(Frame, kw_only=True):
    """A file attached to a post (or just uploaded): what it is and where to get it."""

    id: Annotated[str, Meta(description="The upload's random id (22 URL-safe characters)")]
    name: Annotated[str, Meta(description="The uploaded name, made safe (no path or control)")]
    type: Annotated[
        str, Meta(description="The content type read from the bytes (not the browser's)")
    ]
    size: Annotated[int, Meta(description="Bytes")]
    url: Annotated[
        str, Meta(description="The file; only for who may enter the post's room (else 404)")
    ]
    thumb: Annotated[
        str | None, Meta(description="Images only: a WebP thumbnail, at most 480 px a side")
    ] = None
    width: Annotated[
        int | None, Meta(description="Images only: pixels, as shown (EXIF orientation applied)")
    ] = None
    height: Annotated[int | None, Meta(description="Images only: pixels, as shown")] = None


class MessageEvent(Frame, kw_only=True):
    """A room event, live or replayed (REST: a stored message); enter/leave notices have no seq."""

    msg_type: Annotated[
        int, Meta(description="0 message, 1 warning, 2 alert, 3 muted; notices: 4 enter, 5 leave")
    ]
    room: int
    username: str
    message: str
    seq: Annotated[
        int | None,
        Meta(
            description="Its place in the room's stream of posts and changes (1, 2, 3, ... with "
            "no gap across both); absent on notices"
        ),
    ] = None
    ts: Annotated[
        str,
        Meta(
            description="When it was stored (a notice: sent), ISO 8601 UTC",
            examples=["2026-11-24T18:20:16.123Z"],
        ),
    ]
    html: Annotated[
        str,
        Meta(
            description="The message as sanitized HTML (the formatting subset of docs/protocol.md)"
            "; absent when the text has no formatting: show `message` as plain text",
            examples=["<p><strong>bold</strong> and <code>code</code></p>"],
        ),
    ] = ""
    deleted: Annotated[
        bool, Meta(description="Present (true) only when it was deleted; `message` is empty")
    ] = False
    edited: Annotated[
        str | None, Meta(description="When it was last edited, ISO 8601 UTC; absent if never")
    ] = None
    reply_to: Annotated[
        int | None, Meta(description="The seq of the post in this room that it answers")
    ] = None
    reactions: Annotated[
        list[ReactionSummary],
        Meta(description="Its reactions, in the order first given; absent when none"),
    ] = []
    files: Annotated[
        list[FileInfo],
        Meta(description="Its attached files, in upload order; absent when none (and deleted)"),
    ] = []


class ChangeEvent(Frame, kw_only=True):
    """A change to post ``target``, numbered in the room's stream: apply it, never show it.

    ``edit`` carries the new text (``message``, ``html``, ``edited``); ``delete``
    nothing more (the post becomes a tombstone); ``react`` the post's whole
    ``reactions`` list after the change.
    """

    change: Literal["edit", "delete", "react"]
    room: int
    seq: Annotated[int, Meta(description="The change's place in the room's stream")]
    target: Annotated[int, Meta(description="The seq of the changed post")]
    username: Annotated[str, Meta(description="Who made the change")]
    ts: Annotated[str, Meta(description="When the change was stored, ISO 8601 UTC")]
    message: str | None = None
    html: str = ""
    edited: str | None = None
    reactions: list[ReactionSummary] | None = None


class HistoryReply(Frame, kw_only=True):
    """A page of older messages, oldest first within the page."""

    history: Annotated[int, Meta(description="The room id")]
    messages: list[MessageEvent]
    has_more: Annotated[bool, Meta(description="True if older messages exist before this page")]
    ref: Scalar | UnsetType = UNSET


class StreamReply(Frame, kw_only=True):
    """A page of a room's stream after ``after``: its posts (as they are now) and its changes.

    Together they hold every seq of ``after < seq <= upto``; merged by seq they
    are what a socket that resumed with ``since`` = ``after`` received.
    """

    stream: Annotated[int, Meta(description="The room id")]
    after: int
    upto: Annotated[int, Meta(description="The highest seq this page covers")]
    posts: list[MessageEvent]
    changes: list[ChangeEvent]
    has_more: Annotated[bool, Meta(description="True if the stream goes on past `upto`")]


class ReadEvent(Frame, kw_only=True):
    """The user's read position in a room moved (on any of their sockets, or REST)."""

    read: Annotated[int, Meta(description="The room id")]
    seq: Annotated[int, Meta(description="The stored read position: it never moves back")]
    posts: ReadPosts
    ref: Scalar | UnsetType = UNSET


class MentionEvent(Frame, kw_only=True):
    """A stored message mentions the user (``@username``, or staff's ``@room``)."""

    mention: Annotated[int, Meta(description="The room id")]
    seq: int
    id: Annotated[int, Meta(description="The message's id: GET /api/mentions pages with before")]
    username: Annotated[str, Meta(description="The author")]
    message: str
    ts: Annotated[str, Meta(description="When it was stored, ISO 8601 UTC")]


class RoomActivity(Struct, kw_only=True):
    """A room's newest seq, and the user's unread mentions there."""

    room: int
    last_seq: int
    posts: PostCount
    mentions: Annotated[int, Meta(description="Unread mentions of the user in the room")]


class ActivityEvent(Frame, kw_only=True):
    """The rooms the user may enter whose last_seq or mention count changed since the last one."""

    activity: list[RoomActivity]


Creator = Annotated[
    str | None, Meta(description="The username of who created it; null: made in the admin")
]


class RoomListedEvent(Frame, kw_only=True):
    """A room you may enter was created or changed (title, staff_only): add or update it."""

    room_listed: Annotated[int, Meta(description="The room id")]
    title: str
    staff_only: bool
    created_by: Creator
    kind: RoomKindName
    members: MemberNames | UnsetType = UNSET


class RoomRemovedEvent(Frame, kw_only=True):
    """A room was deleted, or you may no longer enter it: drop it and close its panes."""

    room_removed: Annotated[int, Meta(description="The room id")]


class RoomLeftEvent(Frame, kw_only=True):
    """You left a room (on any device): drop it from your list and close its panes."""

    room_left: Annotated[int, Meta(description="The room id")]


class RoomRejoinedEvent(Frame, kw_only=True):
    """You joined a room you had left (on any device): put it back in your list."""

    room_rejoined: Annotated[int, Meta(description="The room id")]
    title: str
    staff_only: bool
    created_by: Creator
    kind: RoomKindName
    members: MemberNames | UnsetType = UNSET


class MentionsReply(Frame, kw_only=True):
    """A page of the messages that mention the user, newest first."""

    mentions: list[MentionEvent]
    has_more: Annotated[bool, Meta(description="True if older mentions exist")]


class SearchResult(Struct, omit_defaults=True, kw_only=True):
    """A stored message that matches a search: its message frame fields, room title, snippet."""

    msg_type: int
    room: int
    title: Annotated[str, Meta(description="The room's title")]
    seq: int
    username: str
    ts: Annotated[str, Meta(description="When it was stored, ISO 8601 UTC")]
    message: str
    html: Annotated[str, Meta(description="The rendered text; absent when plain text")] = ""
    edited: Annotated[
        str | None, Meta(description="When it was last edited, ISO 8601 UTC; absent if never")
    ] = None
    snippet: Annotated[
        str,
        Meta(
            description="Safe HTML: the matching part of the text, escaped, with the words "
            "found in <mark> tags (and no other markup)"
        ),
    ]
    files: Annotated[
        list[FileInfo], Meta(description="Its attached files, in upload order; absent when none")
    ] = []


class SearchReply(Frame, kw_only=True):
    """A page of search results, newest first; ``next`` pages on (null: no more)."""

    search: list[SearchResult]
    next: Annotated[
        str | None, Meta(description="Pass as `cursor` for the next page; null when done")
    ]
    ref: Scalar | UnsetType = UNSET


class ErrorFrame(Frame, kw_only=True):
    """A failure: a code to branch on, a sentence for people (REST: every error's body)."""

    # On the socket, the socket stays open unless the code says otherwise.

    error: ErrorCode
    detail: Annotated[
        str,
        Meta(
            description="English for people; never parse it", examples=["Room 2 is for staff only."]
        ),
    ]
    room: Annotated[
        int | None, Meta(description="Socket only: the server took the socket out of this room")
    ] = None
    stored_seq: Annotated[
        int | None,
        Meta(
            description="SERVICE_UNAVAILABLE only: the message was stored as this seq "
            "and reaches members when live delivery is back; absent: nothing was stored."
        ),
    ] = None
    retry_after: Annotated[
        float | None,
        Meta(
            description="RATE_LIMITED only: seconds to wait before trying again "
            "(REST: also the Retry-After header)"
        ),
    ] = None
    ref: Scalar | UnsetType = UNSET


PresenceState = Literal["online", "idle", "offline"]


class PresenceMember(Struct, kw_only=True):
    """One person in a room: online (a socket is active), idle, or offline (left)."""

    username: str
    state: PresenceState


class PresenceEvent(Frame, kw_only=True):
    """Who is in a room: all of them after a join (``full``), then changes, once a second."""

    presence: Annotated[int, Meta(description="The room id")]
    members: list[PresenceMember]
    full: Annotated[
        bool, Meta(description="True: the whole list; false: only these members changed")
    ]


class TypingEvent(Frame, kw_only=True):
    """Someone in the room is typing; hide it after ``expires_in`` seconds unless repeated."""

    typing: Annotated[int, Meta(description="The room id")]
    username: str
    expires_in: int


class RoomMembers(Frame, kw_only=True):
    """Who is in a room now, on any server process (REST), by username."""

    room: int
    members: list[PresenceMember]


_encoder = msgspec.json.Encoder()


def encode(frame: Frame) -> str:
    """Encode a server frame as the text of one WebSocket frame."""
    return _encoder.encode(frame).decode()


_change_decoder = msgspec.json.Decoder(ChangeEvent)


def decode_change(text: str) -> ChangeEvent:
    """A stored change frame (chat.models.Change.frame) as its Struct."""
    return _change_decoder.decode(text)


def error_frame(error: ChatError, ref: Scalar | UnsetType = UNSET) -> str:
    """Encode the error frame for ``error``."""
    return encode(
        ErrorFrame(
            error=error.code,
            detail=error.detail,
            room=error.room,
            stored_seq=error.stored_seq,
            retry_after=error.retry_after,
            ref=ref,
        )
    )
