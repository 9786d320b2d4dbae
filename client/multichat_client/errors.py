"""What the client raises. ``code`` is the server's error code, as on the wire."""

from __future__ import annotations


class MultichatError(Exception):
    """The server refused a request (``code``: USER_HAS_TO_LOGIN, ROOM_INVALID, ...)."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        status: int | None = None,
        stored_seq: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.status = status
        # SERVICE_UNAVAILABLE for a post: set if the message was stored anyway (as this seq),
        # so it must not be sent again; None if nothing was stored.
        self.stored_seq = stored_seq
        self.retry_after = retry_after  # RATE_LIMITED: seconds to wait before trying again


class AuthError(MultichatError):
    """The server refused the token (missing, wrong or revoked): retrying will not help."""


class ConnectionLost(MultichatError):
    """The server could not be reached, or the connection dropped before the reply."""

    def __init__(self, detail: str) -> None:
        super().__init__("CONNECTION_LOST", detail)


class NotRead(ConnectionLost):
    """The server closed with 1012 (restarting) before reading the command: safe to send again."""


def token_refused(base_url: str, code: str = "USER_HAS_TO_LOGIN") -> str:
    """The sentence that tells a user their token was refused, and where to get one."""
    return f"the server refused the token ({code}): create one at {base_url.rstrip('/')}/tokens/"
