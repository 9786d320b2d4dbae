"""Invitations to sign up, and the profile (display name) of each person."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.contrib import admin
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class InvitationState(StrEnum):
    """Whether an invitation link still signs people up, and if not, why."""

    USABLE = "usable"
    USED_UP = "used up"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def label(self) -> str:
        """The state in the page's language (the value is what code and data attributes use)."""
        return str(STATE_LABELS[self])


STATE_LABELS = {
    InvitationState.USABLE: _("usable"),
    InvitationState.USED_UP: _("used up"),
    InvitationState.EXPIRED: _("expired"),
    InvitationState.REVOKED: _("revoked"),
}


class InvitationQuerySet(models.QuerySet["Invitation"]):
    """Queries over invitations."""

    def usable(self, *, now: datetime) -> InvitationQuerySet:
        """Invitations that can still sign someone up at ``now``."""
        return self.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            revoked_at__isnull=True,
            uses__lt=F("max_uses"),
        )


class Invitation(models.Model):
    """A sign-up link for ``max_uses`` people, until ``expires_at`` (never if empty).

    As with API tokens, only the SHA-256 ``digest`` of the link's secret is
    kept: the link is shown once, when it is made. ``prefix`` (the secret's
    first characters, not enough to use it) tells links apart in lists.
    """

    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    note = models.CharField(
        _("note"),
        max_length=200,
        blank=True,
        help_text=_("Who or what the link is for, e.g. “the design team”."),
    )
    max_uses = models.PositiveIntegerField(
        _("uses allowed"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("How many people may sign up with this link."),
    )
    uses = models.PositiveIntegerField(_("uses"), default=0, editable=False)
    expires_at = models.DateTimeField(
        _("expires"), null=True, blank=True, help_text=_("Empty: the link never expires.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        verbose_name=_("made by"),
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            # The last use cannot be taken twice, whatever two sign-ups race for it.
            models.CheckConstraint(
                condition=Q(uses__lte=F("max_uses")), name="invitation_uses_within_max"
            ),
            models.CheckConstraint(condition=Q(max_uses__gte=1), name="invitation_max_uses_min"),
        ]

    def __str__(self) -> str:
        return f"{self.note or gettext('Invitation')} ({self.display})"

    @property
    @admin.display(description=_("link"))
    def display(self) -> str:
        """The non-secret start of the link's secret, e.g. ``1a2B3c4D…``."""
        return f"{self.prefix}…"

    def state(self, *, now: datetime | None = None) -> InvitationState:
        """Usable, or why not (revoked wins over expired, expired over used up)."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return InvitationState.EXPIRED
        if self.uses >= self.max_uses:
            return InvitationState.USED_UP
        return InvitationState.USABLE


class Profile(models.Model):
    """What a person shows of themselves: a display name. Made on the first change."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="profile",
        verbose_name=_("user"),
    )
    display_name = models.CharField(
        _("display name"),
        max_length=50,
        blank=True,
        help_text=_("Shown instead of the username; empty: the username."),
    )
    invitation = models.ForeignKey(
        Invitation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="profiles",
        editable=False,
        verbose_name=_("invitation"),
        help_text=_("The invitation this person signed up with."),
    )

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return self.display_name or str(self.user)
