"""Personal API tokens: stored as a SHA-256 hash, never as the token itself."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    """Queries over tokens."""

    def active(self) -> ApiTokenQuerySet:
        """Tokens that are not revoked and whose user may still log in."""
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A user's personal token for the REST API and the socket (``Authorization: Bearer``).

    The token is shown once, when it is created; only its SHA-256 ``digest``
    is kept, so a copy of the database cannot be used to authenticate. The
    ``prefix`` (part of the token, not secret) lets a user tell tokens apart.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(
        _("name"), max_length=100, help_text=_("What the token is for, e.g. “deploy bot”.")
    )
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    @admin.display(description=_("token"))
    def display(self) -> str:
        """The non-secret start of the token, e.g. ``mct_1a2b3c4d_…``."""
        return f"mct_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        """True unless the token was revoked."""
        return self.revoked_at is None
