"""Every write about people: invitations (create, revoke), sign-up, and display names."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from api import tokens
from chat import conf, ratelimit
from chat.errors import ChatError, ErrorCode
from chat.permissions import Account
from people.models import Invitation, InvitationState, Profile

SECRET_BYTES = 32  # 256 random bits: a link cannot be guessed, so a fast hash is enough
PREFIX_LENGTH = 8
DISPLAY_NAME_MAX_LENGTH = Profile._meta.get_field("display_name").max_length or 50


class SignupRefused(Exception):
    """A sign-up that cannot happen; ``reason`` says why, for the page to explain."""

    def __init__(self, reason: InvitationState | str) -> None:
        super().__init__(str(reason))
        self.reason = reason


CLOSED = "closed"  # SignupRefused.reason when open sign-up is off and no link was given
USERNAME_TAKEN = "username taken"


def invitation_create(
    *,
    created_by: Account | None,
    max_uses: int = 1,
    expires_at: datetime | None = None,
    note: str = "",
) -> tuple[Invitation, str]:
    """Make an invitation; returns it and its link secret, which is never stored."""
    if max_uses < 1:
        raise ValueError("An invitation allows at least one use.")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    invitation = Invitation.objects.create(
        prefix=secret[:PREFIX_LENGTH],
        digest=tokens.digest(secret),
        max_uses=max_uses,
        expires_at=expires_at,
        note=note.strip(),
        created_by=created_by,
    )
    return invitation, secret


def invitation_revoke(*, invitation: Invitation, now: datetime | None = None) -> None:
    """Revoke an invitation: its link signs no one up any more (accounts made stay)."""
    Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now()
    )
    invitation.refresh_from_db(fields=["revoked_at"])


def signup_attempt(*, address: str) -> ratelimit.Verdict:
    """Charge one sign-up attempt to a client address (CHAT_SIGNUP_PER_HOUR; 0: no limit)."""
    per_hour = conf.CHAT_SIGNUP_PER_HOUR
    if per_hour <= 0:
        return ratelimit.Verdict(True)
    return ratelimit.buckets().take(f"signup:{address}", rate=per_hour / 3600, burst=per_hour)


def signup(
    *,
    username: str,
    password: str,
    invitation: Invitation | None,
    now: datetime | None = None,
) -> Account:
    """Create an account with a use of ``invitation``, or by open sign-up when it is None.

    The use is taken by one conditional UPDATE, so when two sign-ups race for
    the last use of a link one of them gets it and the other is refused; and
    if the account cannot be made (the username was taken meanwhile), the use
    is given back with the rollback. The password must have passed Django's
    validators (people.forms.SignupForm) before.
    """
    now = now or timezone.now()
    if invitation is None and not conf.CHAT_OPEN_SIGNUP:
        raise SignupRefused(CLOSED)
    with transaction.atomic():
        if invitation is not None:
            taken = (
                Invitation.objects.usable(now=now)
                .filter(pk=invitation.pk)
                .update(uses=F("uses") + 1)
            )
            if not taken:
                invitation.refresh_from_db()
                raise SignupRefused(invitation.state(now=now))
        try:
            with transaction.atomic():
                user = get_user_model().objects.create_user(username=username, password=password)
        except IntegrityError:
            raise SignupRefused(USERNAME_TAKEN) from None
        Profile.objects.create(user=user, invitation=invitation)
    return user


def display_name_set(*, user: Account, display_name: str) -> Profile:
    """Set (or with an empty name, clear) the name ``user`` is shown by."""
    name = " ".join(display_name.split())  # no leading, trailing or repeated white space
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            f"A display name has at most {DISPLAY_NAME_MAX_LENGTH} characters.",
        )
    if any(unicodedata.category(char) == "Cc" for char in display_name):
        raise ChatError(ErrorCode.BAD_REQUEST, "A display name cannot hold control characters.")
    profile, _ = Profile.objects.update_or_create(user=user, defaults={"display_name": name})
    user.profile = profile
    return profile
