"""The REST API at /api/: the same rules, limits and seq as the socket, through the same services.

Every error is the socket's error frame, ``{"error": CODE, "detail": TEXT}``
with the socket's codes (chat.errors) and the HTTP status of the code, plus
the frame's optional fields when set (``stored_seq``, ``retry_after``). Bodies
that are socket frames are declared in chat.protocol (api/schemas.py). The
OpenAPI schema is at /api/openapi.json, an explorer at /api/docs.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

import msgspec
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from msgspec import UNSET
from ninja import Body, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError

# ninja.Path and ninja.Query are typed as annotation aliases; as parameter defaults they
# are calls of these functions (ninja's shortcuts call them), typed as such here.
from ninja.params.functions import Path, Query
from ninja.parser import Parser
from pydantic import WithJsonSchema

from api.auth import BearerAuth, SessionCookieAuth
from api.schemas import (
    EditBodyIn,
    FrameAPI,
    IndexOut,
    NewDirectBody,
    NewMessageBody,
    NewRoomBody,
    ReactBodyIn,
    ReadBodyIn,
    RoomOut,
    RoomRenameBody,
    RoomsOut,
)
from chat import conf, dbguard, events, files, protocol, rooms, search, selectors, services
from chat.errors import HTTP_STATUS, ChatError, ErrorCode
from chat.permissions import Account
from chat.protocol import (
    MAX_ID,
    ChangedReply,
    EditBody,
    ErrorFrame,
    FileInfo,
    HistoryReply,
    MentionsReply,
    MessageEvent,
    NewDirect,
    NewMessage,
    NewRoom,
    ReactBody,
    ReadBody,
    ReadEvent,
    RoomLeftEvent,
    RoomMembers,
    RoomRejoinedEvent,
    RoomRename,
    SearchReply,
    StreamReply,
)

log = logging.getLogger(__name__)


class FrameParser(Parser):
    """Decode JSON bodies as the socket decodes frames (msgspec: one object, valid Unicode)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        """The body as a JSON object; anything else is a 400 BAD_REQUEST."""
        return protocol.decode_frame(request.body.decode("utf-8"))


class ApiRequest(HttpRequest):
    """A request the API let in: ``auth`` is the account an api.auth authenticator returned."""

    auth: Account


api = FrameAPI(
    title="multichat API",
    version="1",
    description=(
        "Rooms, history and posting for bots and integrations. Authenticate with "
        "`Authorization: Bearer <token>` (create tokens at /tokens/). Errors are "
        '`{"error": CODE, "detail": TEXT}` with the chat socket\'s codes.'
    ),
    auth=[BearerAuth(), SessionCookieAuth()],
    urls_namespace="api",
    parser=FrameParser(),
)

AUTH_ERRORS = {401: ErrorFrame}
ROOM_ERRORS = {**AUTH_ERRORS, 400: ErrorFrame, 403: ErrorFrame, 404: ErrorFrame, 422: ErrorFrame}
RoomId = Path(..., ge=1, le=MAX_ID, description="The room's id")


def error_response(error: ChatError, status: int | None = None) -> HttpResponse:
    """The one error body of the API: the socket's error frame for ``error``.

    The status is the code's unless given; ``retry_after`` (seconds) also sets Retry-After.
    """
    status = HTTP_STATUS[error.code] if status is None else status
    response = HttpResponse(
        protocol.error_frame(error), status=status, content_type="application/json"
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="multichat"'
    if error.retry_after is not None:
        # The header takes whole seconds: round up, so a client that waits finds a token.
        response["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return response


def frame_response(frame: protocol.Frame, *, status: int = 200) -> HttpResponse:
    """A socket frame as a JSON response body, encoded by the protocol module."""
    return HttpResponse(protocol.encode(frame), status=status, content_type="application/json")


@api.exception_handler(ChatError)
def chat_error(request: HttpRequest, exc: ChatError) -> HttpResponse:
    """A rule said no: the socket's code, with the HTTP status that matches it."""
    return error_response(exc)


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    """No or bad credentials: USER_HAS_TO_LOGIN."""
    detail = exc.message
    if detail == "Unauthorized":  # ninja's default: no credentials at all
        detail = "Send `Authorization: Bearer <token>`; create a token at /tokens/."
    return error_response(ChatError(ErrorCode.USER_HAS_TO_LOGIN, detail))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals (an unparsable body, a failed CSRF check)."""
    code = ErrorCode.RATE_LIMITED if exc.status_code == 429 else ErrorCode.BAD_REQUEST
    return error_response(ChatError(code, str(exc)), exc.status_code)


def _describe(error: dict[str, Any]) -> str:
    """One validation error as ``where: what``."""
    loc = [str(part) for part in error.get("loc", ())]
    if loc[:2] == ["body", "body"]:  # ninja nests the body under its parameter name
        loc = loc[1:]
    where = ".".join(loc)
    return f"{where}: {error.get('msg', 'invalid')}"


@api.exception_handler(ValidationError)
def invalid_request(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """A parameter or the body does not match the schema: BAD_REQUEST (ROOM_INVALID for ids)."""
    detail = "; ".join(_describe(e) for e in exc.errors[:5])
    if all(tuple(e.get("loc", ()))[:1] == ("path",) for e in exc.errors):
        return error_response(ChatError(ErrorCode.ROOM_INVALID, f"Not a room id ({detail})."))
    return error_response(ChatError(ErrorCode.BAD_REQUEST, detail), 422)


def database_unavailable(request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
    """The database does not answer: 503 SERVICE_UNAVAILABLE, saying a write stored nothing."""
    detail = dbguard.DETAIL if request.method in ("GET", "HEAD") else dbguard.NOT_STORED
    return error_response(dbguard.unavailable(exc, detail))


for _error in dbguard.DATABASE_ERRORS:
    api.add_exception_handler(_error, database_unavailable)


@api.exception_handler(RequestDataTooBig)
def body_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413, before any of it is read."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    size = request.META.get("CONTENT_LENGTH") or f"more than {limit}"
    detail = f"The request body has {size} bytes; the limit is {limit}."
    return error_response(ChatError(ErrorCode.MESSAGE_TOO_LONG, detail), 413)


@api.exception_handler(Exception)
def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Anything else is our bug: log it, answer SERVER_ERROR."""
    log.exception("API request %s %s failed", request.method, request.path)
    return error_response(
        ChatError(ErrorCode.SERVER_ERROR, "The server could not do that; try again.")
    )


@api.get("/", summary="Where the API is documented", auth=None, response={200: IndexOut})
def index(request: HttpRequest) -> dict[str, str]:
    """Links to the documentation and the schema, for anyone who opens /api/ itself."""
    return {"docs": reverse("api:openapi-view"), "openapi": reverse("api:openapi-json")}


RoomFields = dict[str, int | str | bool | list[str] | None]


def _room_out(entry: selectors.RoomUnread) -> RoomFields:
    """A room as the REST room list shows it (RoomOut)."""
    return {
        "id": entry.room.pk,
        "title": entry.room.title,
        "staff_only": entry.room.staff_only,
        "kind": entry.room.kind,
        "members": entry.members,
        "last_seq": entry.room.last_seq,
        "read_seq": entry.read_seq,
        "posts": entry.room.posts,
        "read_posts": entry.read_posts,
        "unread": entry.unread,
        "mentions": entry.mentions,
        "created_by": entry.created_by,
        "left": entry.left,
    }


@api.get(
    "/rooms",
    summary="Rooms in your list (or every room you may enter)",
    **api.documented(answers={200: RoomsOut, **AUTH_ERRORS, 422: ErrorFrame}),
)
def room_list(
    request: ApiRequest,
    everything: bool = Query(
        False, alias="all", description="Also the rooms you left: every room you may enter"
    ),
) -> dict[str, list[RoomFields]]:
    """The rooms in the caller's list, by title, with each room's newest seq and unread counts."""
    found = selectors.room_list_with_unread(user=request.auth, include_left=everything)
    return {"rooms": [_room_out(entry) for entry in found]}


@api.post(
    "/rooms",
    summary="Create a room",
    **api.documented(
        body=NewRoom,
        answers={201: RoomOut, **AUTH_ERRORS, **dict.fromkeys((400, 403, 422, 429), ErrorFrame)},
    ),
)
def room_create(request: ApiRequest, body: Body[NewRoomBody]) -> Status[RoomFields]:
    """Create a room (CHAT_USERS_CREATE_ROOMS; staff-only rooms: staff); every list shows it."""
    room = rooms.room_create(user=request.auth, title=body.title, staff_only=body.staff_only)
    return Status(201, _room_out(selectors.room_unread(user=request.auth, room=room)))


@api.post(
    "/direct",
    summary="Open a direct conversation",
    **api.documented(
        body=NewDirect,
        answers={
            200: RoomOut,
            201: RoomOut,
            **AUTH_ERRORS,
            **dict.fromkeys((400, 404, 422, 429), ErrorFrame),
        },
    ),
)
def direct_open(request: ApiRequest, body: Body[NewDirectBody]) -> Status[RoomFields]:
    """The conversation of you and ``users`` (201: made now, and listed for each member; 200: it
    existed). Only its members may see or enter it. At most CHAT_DIRECT_MAX_MEMBERS people."""
    room, created = rooms.direct_open(user=request.auth, usernames=body.users)
    entry = selectors.room_unread(user=request.auth, room=room)
    return Status(201 if created else 200, _room_out(entry))


@api.patch(
    "/rooms/{room_id}",
    summary="Rename a room",
    **api.documented(body=RoomRename, answers={200: RoomOut, **ROOM_ERRORS, 429: ErrorFrame}),
)
def room_rename(
    request: ApiRequest, body: Body[RoomRenameBody], room_id: int = RoomId
) -> RoomFields:
    """Rename a room you created (staff: any room); every list and open pane shows the title."""
    room = rooms.room_rename(user=request.auth, room_id=room_id, title=body.title)
    return _room_out(selectors.room_unread(user=request.auth, room=room))


@api.post(
    "/rooms/{room_id}/leave",
    summary="Leave a room (drop it from your list)",
    **api.documented(answers={200: RoomLeftEvent, **ROOM_ERRORS, 429: ErrorFrame}),
)
def room_leave(request: ApiRequest, room_id: int = RoomId) -> HttpResponse:
    """Drop the room from your list and counts on every device, until you join it again."""
    rooms.room_depart(user=request.auth, room_id=room_id)
    return frame_response(RoomLeftEvent(room_left=room_id))


@api.post(
    "/rooms/{room_id}/join",
    summary="Join a room you left (put it back in your list)",
    **api.documented(answers={200: RoomRejoinedEvent, **ROOM_ERRORS, 429: ErrorFrame}),
)
def room_join(request: ApiRequest, room_id: int = RoomId) -> HttpResponse:
    """Put a room back in your list on every device (a room you never left: nothing changes)."""
    room = rooms.room_return(user=request.auth, room_id=room_id)
    entry = selectors.room_unread(user=request.auth, room=room)
    frame = RoomRejoinedEvent(
        room_rejoined=room.pk,
        title=room.title,
        staff_only=room.staff_only,
        created_by=entry.created_by,
        kind=room.kind,  # type: ignore[arg-type]  # a RoomKind value
        members=UNSET if entry.members is None else entry.members,
    )
    return frame_response(frame)


@api.get(
    "/rooms/{room_id}/messages",
    summary="A page of a room's history",
    **api.documented(answers={200: HistoryReply, **ROOM_ERRORS, 429: ErrorFrame}),
)
def messages(
    request: ApiRequest,
    room_id: int = RoomId,
    # Each is None when omitted, but annotated `int`: ninja documents the annotation, and
    # `int | None` would make the OpenAPI schema say the parameter may be sent as null.
    before: int = Query(None, ge=0, le=MAX_ID, description="Only messages with seq < this"),
    limit: int = Query(
        None,
        ge=1,
        le=conf.CHAT_HISTORY_MAX_PAGE_SIZE,
        description=f"Page size (default {conf.CHAT_HISTORY_PAGE_SIZE})",
    ),
) -> HttpResponse:
    """The ``limit`` newest messages below ``before``, oldest first, as the socket's history."""
    page, has_more = services.room_history(
        user=request.auth, room_id=room_id, before=before, limit=limit
    )
    reply = HistoryReply(history=room_id, messages=page, has_more=has_more)
    return frame_response(reply)


@api.get(
    "/rooms/{room_id}/stream",
    summary="A page of a room's stream: posts and changes after a seq",
    **api.documented(answers={200: StreamReply, **ROOM_ERRORS, 429: ErrorFrame}),
)
def stream(
    request: ApiRequest,
    room_id: int = RoomId,
    after: int = Query(..., ge=0, le=MAX_ID, description="Only seqs above this"),
    limit: int = Query(
        None,
        ge=1,
        le=conf.CHAT_HISTORY_MAX_PAGE_SIZE,
        description=f"Seqs per page (default {conf.CHAT_HISTORY_PAGE_SIZE})",
    ),
) -> HttpResponse:
    """What a socket resuming with ``since`` = ``after`` would get: the posts as they are now
    and every change, over the next ``limit`` seqs; page on with ``after`` = ``upto``.

    For a client that missed more than a join replays (CHAT_REPLAY_MAX): history
    pages hold posts only, so the changes to posts it already has are here.
    """
    page = services.room_stream(user=request.auth, room_id=room_id, after=after, limit=limit)
    return frame_response(page)


@api.post(
    "/rooms/{room_id}/messages",
    summary="Post a message",
    **api.documented(
        body=NewMessage,
        answers={
            201: MessageEvent,
            **ROOM_ERRORS,
            413: ErrorFrame,
            429: ErrorFrame,
            503: ErrorFrame,
        },
    ),
)
def post_message(
    request: ApiRequest, body: Body[NewMessageBody], room_id: int = RoomId
) -> HttpResponse:
    """Store a message with the room's next seq; members' sockets receive it live.

    ``files``: ids of your uploads (POST /api/uploads) not yet posted; 404
    FILE_INVALID if one is not (nothing is stored then).
    """
    message = services.message_send(
        user=request.auth,
        room_id=room_id,
        text=body.message,
        msg_type=body.msg_type,
        reply_to=body.reply_to,
        files=body.files,
    )
    return frame_response(events.message_event(message), status=201)


Seq = Path(..., ge=1, le=MAX_ID, description="The post's seq in the room")
CHANGE_ERRORS: dict[int, Any] = {**ROOM_ERRORS, 429: ErrorFrame, 503: ErrorFrame}


@api.patch(
    "/rooms/{room_id}/messages/{seq}",
    summary="Edit one of your posts",
    **api.documented(body=EditBody, answers={200: ChangedReply, 413: ErrorFrame, **CHANGE_ERRORS}),
)
def edit_message(
    request: ApiRequest, body: Body[EditBodyIn], room_id: int = RoomId, seq: int = Seq
) -> HttpResponse:
    """Replace the text of your own post; members see the change live and on resume.

    403 EDIT_DENIED if it is not yours or the edit window is over; 404
    MESSAGE_INVALID if there is no such post or it was deleted. ``seq`` in the
    answer is the change's own seq (absent if the text was already that).
    """
    changed = services.message_edit(user=request.auth, room_id=room_id, seq=seq, text=body.message)
    return frame_response(ChangedReply(changed=room_id, seq=changed))


@api.delete(
    "/rooms/{room_id}/messages/{seq}",
    summary="Delete a post",
    **api.documented(answers={200: ChangedReply, **CHANGE_ERRORS}),
)
def delete_message(request: ApiRequest, room_id: int = RoomId, seq: int = Seq) -> HttpResponse:
    """Delete your own post (staff: any post); it stays as a tombstone with no text."""
    changed = services.message_delete(user=request.auth, room_id=room_id, seq=seq)
    return frame_response(ChangedReply(changed=room_id, seq=changed))


@api.post(
    "/rooms/{room_id}/messages/{seq}/reactions",
    summary="React to a post, or take a reaction back",
    **api.documented(body=ReactBody, answers={200: ChangedReply, **CHANGE_ERRORS}),
)
def react(
    request: ApiRequest, body: Body[ReactBodyIn], room_id: int = RoomId, seq: int = Seq
) -> HttpResponse:
    """Put your emoji on the post (``on`` true) or take it off; ``seq`` absent: already so."""
    changed = services.message_react(
        user=request.auth, room_id=room_id, seq=seq, emoji=body.emoji, on=body.on
    )
    return frame_response(ChangedReply(changed=room_id, seq=changed))


@api.get(
    "/rooms/{room_id}/members",
    summary="Who is in a room now",
    **api.documented(answers={200: RoomMembers, **ROOM_ERRORS}),
)
def members(request: ApiRequest, room_id: int = RoomId) -> HttpResponse:
    """The people with a socket in the room now, on any server process: online or idle."""
    found = services.room_members(user=request.auth, room_id=room_id)
    return frame_response(RoomMembers(room=room_id, members=found))


@api.post(
    "/rooms/{room_id}/read",
    summary="Mark a room read up to a seq",
    **api.documented(body=ReadBody, answers={200: ReadEvent, **ROOM_ERRORS, 429: ErrorFrame}),
)
def mark_read(request: ApiRequest, body: Body[ReadBodyIn], room_id: int = RoomId) -> HttpResponse:
    """Move the caller's read position up to ``seq`` (never back; clamped to the room's last seq).

    Every socket of the caller gets the same ``read`` frame.
    """
    stored, posts = services.read_mark(user=request.auth, room_id=room_id, seq=body.seq)
    return frame_response(ReadEvent(read=room_id, seq=stored, posts=posts))


@api.get(
    "/mentions",
    summary="Messages that mention you",
    **api.documented(answers={200: MentionsReply, **AUTH_ERRORS, 422: ErrorFrame, 429: ErrorFrame}),
)
def mentions(
    request: ApiRequest,
    # None when omitted, annotated `int` as in ``messages`` (see there).
    before: int = Query(None, ge=0, le=MAX_ID, description="Only mentions with id < this"),
    limit: int = Query(
        None,
        ge=1,
        le=conf.CHAT_HISTORY_MAX_PAGE_SIZE,
        description=f"Page size (default {conf.CHAT_HISTORY_PAGE_SIZE})",
    ),
) -> HttpResponse:
    """The messages that mention the caller (``@name``, staff's ``@room``), newest first.

    Only in rooms the caller may enter now. Page with ``before`` = the last item's ``id``.
    """
    page, has_more = services.mention_list(user=request.auth, before=before, limit=limit)
    reply = MentionsReply(mentions=[events.mention_event(m) for m in page], has_more=has_more)
    return frame_response(reply)


# The search parameters' schema keywords: documentation (and schemathesis' guide) only,
# chat.search enforces the rules itself, so that a bad value is BAD_REQUEST as on the socket.
SEARCH_QUERY = WithJsonSchema(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": protocol.SEARCH_QUERY_MAX_LENGTH,
        "pattern": protocol.MESSAGE_PATTERN,
    }
)
WHEN = WithJsonSchema({"type": "string", "format": "date-time"})
CURSOR = WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,18}$"})


@api.get(
    "/search",
    summary="Search the messages of every room you may enter",
    **api.documented(
        answers={
            200: SearchReply,
            **AUTH_ERRORS,
            **dict.fromkeys((400, 403, 404, 422, 429), ErrorFrame),
        }
    ),
)
def search_messages(
    request: ApiRequest,
    # The schema keywords document the rules; chat.search enforces them (BAD_REQUEST).
    query: Annotated[str, SEARCH_QUERY] = Query(
        ...,
        description='Words to find (all of them), "a phrase", -excluded, `or`; '
        f"at most {protocol.SEARCH_QUERY_MAX_LENGTH} characters, not blank",
    ),
    # None when omitted, annotated as the type it has when given (see ``messages``).
    room: int = Query(None, ge=1, le=MAX_ID, description="Only in this room"),
    author: str = Query(
        None, description="Only messages by this username (USER_INVALID: nobody has it)"
    ),
    after: Annotated[str, WHEN] = Query(
        None,
        description="Only from this time on: ISO 8601 (2026-11-29T18:20:00Z), or a date "
        "(2026-11-29, midnight UTC)",
    ),
    before: Annotated[str, WHEN] = Query(
        None,
        description="Only before this time: ISO 8601, or a date (midnight UTC)",
    ),
    cursor: Annotated[str, CURSOR] = Query(
        None,
        description="The `next` of the previous page",
    ),
    limit: int = Query(
        None,
        ge=1,
        le=protocol.SEARCH_MAX_PAGE_SIZE,
        description=f"Page size (default {protocol.SEARCH_PAGE_SIZE})",
    ),
) -> HttpResponse:
    """Full-text search, newest first (not ranked); snippets are HTML with only <mark> tags.

    Page with ``cursor`` = the previous answer's ``next`` until it is null.
    """
    page = search.search(
        user=request.auth,
        query=query,
        room=room,
        author=author,
        after=after,
        before=before,
        cursor=cursor,
        limit=limit,
    )
    return frame_response(SearchReply(search=page.results, next=page.next))


# The upload's body: multipart/form-data with one part, ``file`` (documented by hand: the
# view reads request.FILES itself, so that two files or none are a clear 400).
UPLOAD_BODY = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "The file (one per request)",
                    }
                },
                "required": ["file"],
                "additionalProperties": False,
            }
        }
    },
    "required": True,
}


def _upload_operation() -> dict[str, Any]:
    """``documented`` for the upload, with its multipart body."""
    answers: dict[int, type[msgspec.Struct]] = {201: FileInfo, **AUTH_ERRORS}
    answers.update(dict.fromkeys((400, 403, 413, 415, 429), ErrorFrame))
    operation = api.documented(answers=answers)
    operation["openapi_extra"]["requestBody"] = UPLOAD_BODY
    return operation


@api.post("/uploads", summary="Upload a file to attach to a post", **_upload_operation())
def upload(request: ApiRequest) -> HttpResponse:
    """Upload one file (multipart field ``file``); post it with ``files`` = [its ``id``].

    Its type is read from its bytes: 415 FILE_TYPE_REFUSED if it is not
    allowed; 413 FILE_TOO_LARGE over CHAT_UPLOAD_MAX_BYTES; 429
    UPLOAD_QUOTA_EXCEEDED over CHAT_UPLOAD_QUOTA_BYTES_PER_DAY in 24 hours
    (``retry_after``). Until posted, only you may fetch it; unposted, it is
    removed after CHAT_UPLOAD_ORPHAN_HOURS.
    """
    try:
        sent = [(field, f) for field in request.FILES for f in request.FILES.getlist(field)]
    except (MultiPartParserError, TooManyFilesSent) as exc:
        raise ChatError(ErrorCode.BAD_REQUEST, f"The multipart body is not valid: {exc}") from None
    if len(sent) != 1 or sent[0][0] != "file" or request.POST:
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            "Send exactly one file, as the multipart/form-data field `file`, and nothing else.",
        )
    attachment = files.upload(user=request.auth, file=sent[0][1])
    return frame_response(files.attachment_info(attachment), status=201)
