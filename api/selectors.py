"""Reads over API tokens, shared by the socket, the REST API and the token pages."""

from __future__ import annotations

from django.db.models import QuerySet

from api import tokens
from api.models import ApiToken
from chat.permissions import Account


def token_for_secret(*, token: str) -> ApiToken | None:
    """The active token whose plaintext is ``token`` (with its user), or None."""
    if not token or len(token) > tokens.MAX_TOKEN_LENGTH:
        return None
    return (
        ApiToken.objects.active().select_related("user").filter(digest=tokens.digest(token)).first()
    )


def tokens_for_user(*, user: Account) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, revoked ones included."""
    return ApiToken.objects.filter(user=user)
