"""The token format: ``mct_<prefix>_<secret>``, and how a token is hashed.

``prefix`` is 8 hex characters, shown in lists so users can tell tokens
apart; ``secret`` is 32 random bytes, URL-safe base64. The database keeps
only the SHA-256 of the whole token: the token has 256 random bits, so a
fast hash is enough (a slow password hash protects guessable secrets).
"""

from __future__ import annotations

import hashlib
import secrets

SCHEME = "mct"
PREFIX_BYTES = 4
SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 200  # longer Authorization values are not ours; don't hash them


def generate() -> tuple[str, str]:
    """A new random token and its display prefix."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    return f"{SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}", prefix


def digest(token: str) -> str:
    """The hex SHA-256 of ``token``: what the database stores and is searched by."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def socket_session_key(token_id: int) -> str:
    """The key that stands for a token's sockets where a session's key would be.

    Revoking the token ends this "session" (chat.services.session_ended), which
    closes every socket opened with the token, as logging out does for a cookie.
    """
    return f"api-token:{token_id}"


def token_id(session_key: str) -> int | None:
    """The token id in a ``socket_session_key``, or None if the key is not one."""
    prefix, _, number = session_key.partition(":")
    return int(number) if prefix == "api-token" and number.isdigit() else None


def bearer_token(value: str | None) -> str | None:
    """The token in an ``Authorization: Bearer <token>`` value, or None if it is not one."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()
