"""The errors clients are told about: one set of codes for the socket and the REST API.

A rule that says no raises ``ChatError``; the socket answers it with an error
frame (chat.protocol.error_frame) and the REST API with the same frame as
the body and the HTTP status of its code (``HTTP_STATUS``). This module
depends on nothing else in the project, so every layer can raise from it.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Codes sent as ``{"error": CODE}``; clients branch on these, never on ``detail``."""

    USER_HAS_TO_LOGIN = "USER_HAS_TO_LOGIN"
    ROOM_INVALID = "ROOM_INVALID"
    ROOM_ACCESS_DENIED = "ROOM_ACCESS_DENIED"
    USER_INVALID = "USER_INVALID"  # no account has that username (REST; a search's author)
    BAD_REQUEST = "BAD_REQUEST"
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
    MESSAGE_TOO_LONG = "MESSAGE_TOO_LONG"
    MESSAGE_INVALID = "MESSAGE_INVALID"  # no such post in the room, or it was deleted
    EDIT_DENIED = "EDIT_DENIED"  # not your post, or the edit window is over
    RATE_LIMITED = "RATE_LIMITED"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"  # an upload over CHAT_UPLOAD_MAX_BYTES (or too many pixels)
    FILE_TYPE_REFUSED = "FILE_TYPE_REFUSED"  # its sniffed type is not allowed
    UPLOAD_QUOTA_EXCEEDED = "UPLOAD_QUOTA_EXCEEDED"  # over the uploader's bytes per day
    FILE_INVALID = "FILE_INVALID"  # a post's file is not the poster's unposted upload
    TOO_MANY_ROOMS = "TOO_MANY_ROOMS"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    SERVER_ERROR = "SERVER_ERROR"


# The REST API's status for each code (docs/api.md lists them). A few answers
# differ for reasons of HTTP, not of the rule: a body over the upload limit is
# 413, a request that does not match the OpenAPI schema 422, a failed CSRF 403.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.USER_HAS_TO_LOGIN: 401,
    ErrorCode.ROOM_INVALID: 404,
    ErrorCode.ROOM_ACCESS_DENIED: 403,
    ErrorCode.USER_INVALID: 404,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNKNOWN_COMMAND: 400,
    ErrorCode.MESSAGE_TOO_LONG: 400,
    ErrorCode.MESSAGE_INVALID: 404,
    ErrorCode.EDIT_DENIED: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.FILE_TOO_LARGE: 413,
    ErrorCode.FILE_TYPE_REFUSED: 415,
    ErrorCode.UPLOAD_QUOTA_EXCEEDED: 429,
    ErrorCode.FILE_INVALID: 404,
    ErrorCode.TOO_MANY_ROOMS: 429,
    ErrorCode.TOO_MANY_CONNECTIONS: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.SERVER_ERROR: 500,
}


class ChatError(Exception):
    """A command failed in a way the client is told about with an error frame."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        room: int | None = None,
        stored_seq: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.room = room
        self.stored_seq = stored_seq  # SERVICE_UNAVAILABLE: stored, but not yet delivered live
        # RATE_LIMITED, UPLOAD_QUOTA_EXCEEDED: seconds until the command is allowed
        self.retry_after = retry_after
