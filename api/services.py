"""Every write to API tokens: create (the plaintext is returned once), use, revoke."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from api import tokens
from api.models import ApiToken
from chat import services as chat_services
from chat.permissions import Account

# last_used is a hint for the user, not an audit log: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_create(*, user: Account, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns it and its plaintext, which is never stored."""
    plaintext, prefix = tokens.generate()
    token = ApiToken.objects.create(
        user=user, name=name.strip() or "token", prefix=prefix, digest=tokens.digest(plaintext)
    )
    return token, plaintext


def token_revoke(*, token: ApiToken, now: datetime | None = None) -> None:
    """Revoke a token: it no longer authenticates, and its open sockets are closed."""
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now or timezone.now()
        )
        if revoked:  # its sockets are closed after the commit, not if it is rolled back
            chat_services.session_ended(
                user_id=token.user_id, session_key=tokens.socket_session_key(token.pk)
            )
    token.refresh_from_db(fields=["revoked_at"])


def token_delete(*, token: ApiToken) -> None:
    """Delete a token, closing its open sockets first."""
    with transaction.atomic():
        token_revoke(token=token)
        token.delete()


def token_used(*, token: ApiToken, now: datetime | None = None) -> None:
    """Record that ``token`` authenticated a request (at most once per minute)."""
    now = now or timezone.now()
    if token.last_used is not None and now - token.last_used < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used=now)
    token.last_used = now
