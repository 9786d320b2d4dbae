"""Reads over people: profile cards for the REST API and the page, invitations by link."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from api import tokens
from chat import accounts, conf
from chat.permissions import Account
from people import avatars
from people.models import Invitation

MAX_TOKEN_LENGTH = 100  # longer path segments are not ours; don't hash them


@dataclass(frozen=True, slots=True)
class Card:
    """What anyone logged in may see of a person: the profile card."""

    username: str
    display_name: str  # the username when none is set
    is_staff: bool
    joined: datetime | None  # None: the host's user model records no date_joined
    color: str
    initials: str


def card_of(user: Account) -> Card:
    """The card of ``user`` (its profile, if any, should be loaded with it)."""
    username = user.get_username()
    profile = getattr(user, "profile", None)  # None: never set a display name
    name = (profile.display_name if profile is not None else "") or _site_name(user) or username
    return Card(
        username=username,
        display_name=name,
        is_staff=user.is_staff,
        joined=getattr(user, "date_joined", None),
        color=avatars.color_for(username),
        initials=avatars.initials(name),
    )


def _site_name(user: Account) -> str:
    """The name the site's user model gives ``user`` (CHAT_USER_DISPLAY_NAME), or ""."""
    attribute = conf.CHAT_USER_DISPLAY_NAME
    if not attribute:
        return ""
    value = getattr(user, attribute, "")
    return str((value() if callable(value) else value) or "")


def cards_for(*, usernames: Iterable[str]) -> list[Card]:
    """The cards of the accounts among ``usernames`` (unknown names are left out), by username."""
    # A name no account can have is not looked up (PostgreSQL refuses NUL in text outright).
    possible = {name for name in usernames if 0 < len(name) <= 150 and "\x00" not in name}
    found = (
        get_user_model()
        ._default_manager.filter(**accounts.named(possible))
        .select_related("profile")
        .order_by(accounts.name_field())
    )
    return [card_of(user) for user in found]


def cards_matching(*, query: str, limit: int) -> list[Card]:
    """The active accounts whose username or display name contains ``query``, by username."""
    found = get_user_model()._default_manager.filter(is_active=True)
    query = query.strip().replace("\x00", "")
    if query:
        found = found.filter(
            Q(**{accounts.by_name(lookup="__icontains"): query})
            | Q(profile__display_name__icontains=query)
        )
    return [
        card_of(user)
        for user in found.select_related("profile").order_by(accounts.name_field())[:limit]
    ]


def card_for(*, username: str) -> Card | None:
    """The card of the account ``username``, or None if there is none."""
    found = cards_for(usernames=[username])
    return found[0] if found else None


def invitation_for_token(*, token: str) -> Invitation | None:
    """The invitation whose link secret is ``token`` (whatever its state), or None."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return Invitation.objects.filter(digest=tokens.digest(token)).first()


def invitations_recent(*, limit: int = 50) -> QuerySet[Invitation]:
    """The newest invitations, with who made them."""
    return Invitation.objects.select_related("created_by")[:limit]
