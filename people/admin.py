"""Admin for invitations (create: the link is shown once; revoke) and profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from chat import accounts, shownonce
from people import services
from people.models import Invitation, Profile

# See api/admin.py: ModelAdmin is generic for django-stubs only.
if TYPE_CHECKING:
    InvitationModelAdmin = admin.ModelAdmin[Invitation]
    ProfileModelAdmin = admin.ModelAdmin[Profile]
else:
    InvitationModelAdmin = ProfileModelAdmin = admin.ModelAdmin


@admin.action(description=_("Revoke the selected invitations"))
def revoke(
    modeladmin: InvitationAdmin, request: HttpRequest, queryset: QuerySet[Invitation]
) -> None:
    """Revoke each selected invitation: its link signs no one up any more."""
    count = 0
    for invitation in queryset.filter(revoked_at__isnull=True):
        services.invitation_revoke(invitation=invitation)
        count += 1
    revoked = ngettext("Revoked %(count)d invitation.", "Revoked %(count)d invitations.", count)
    modeladmin.message_user(request, revoked % {"count": count}, messages.SUCCESS)


@admin.register(Invitation)
class InvitationAdmin(InvitationModelAdmin):
    """Invitations: list, create (the link is shown once), revoke."""

    list_display = ("__str__", "uses", "max_uses", "expires_at", "state", "created_by", "created")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("note", "prefix")
    list_select_related = ("created_by",)
    actions = [revoke]

    @admin.display(description=_("status"))
    def state(self, obj: Invitation) -> str:
        """Usable, or why not."""
        return obj.state().label

    def get_fields(self, request: HttpRequest, obj: Invitation | None = None) -> tuple[str, ...]:
        """Adding asks for the uses, the expiry and a note; the rest is set by the service."""
        if obj is None:
            return ("max_uses", "expires_at", "note")
        return ("note", "display", "max_uses", "uses", "expires_at", "created_by", "revoked_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Invitation | None = None
    ) -> tuple[str, ...]:
        """Only the note of an existing invitation changes; revoke it to stop it."""
        if obj is None:
            return ()
        return ("display", "max_uses", "uses", "expires_at", "created_by", "revoked_at")

    def save_model(
        self,
        request: HttpRequest,
        obj: Invitation,
        form: forms.ModelForm[Invitation],
        change: bool,
    ) -> None:
        """Create through the service (which makes the secret); later saves change the note."""
        if change:
            obj.save(update_fields=["note"])
            return
        user = request.user if request.user.is_authenticated else None
        invitation, secret = services.invitation_create(
            created_by=user, max_uses=obj.max_uses, expires_at=obj.expires_at, note=obj.note
        )
        obj.pk, obj.prefix, obj.digest, obj.created = (
            invitation.pk,
            invitation.prefix,
            invitation.digest,
            invitation.created,
        )
        link = request.build_absolute_uri(reverse("signup-invited", args=[secret]))
        shownonce.remember(request, link)

    def response_add(
        self, request: HttpRequest, obj: Invitation, post_url_continue: str | None = None
    ) -> TemplateResponse:
        """Show the new link this once (it is not stored, and not put in a message cookie)."""
        return shownonce.shown_once(
            request,
            each_context=self.admin_site.each_context(request),
            template="admin/people/invitation/created.html",
            title=_("Invitation created"),
            obj=obj,
        )


@admin.register(Profile)
class ProfileAdmin(ProfileModelAdmin):
    """Display names: search by username, change or clear one."""

    list_display = ("user", "display_name", "invitation")
    search_fields = (accounts.by_name("user__"), "display_name")
    list_select_related = ("user", "invitation")
    autocomplete_fields = ("user",)
    readonly_fields = ("invitation",)
