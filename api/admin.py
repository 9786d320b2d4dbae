"""Admin for API tokens: create one for a user (shown once), revoke, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api import services
from api.models import ApiToken
from chat import accounts, shownonce

# django-stubs makes ModelAdmin generic in its model, but Django's class takes no
# subscript at runtime (that needs django-stubs-ext's monkeypatch, a dev-only package).
if TYPE_CHECKING:
    ApiTokenModelAdmin = admin.ModelAdmin[ApiToken]
else:
    ApiTokenModelAdmin = admin.ModelAdmin


@admin.action(description=_("Revoke the selected tokens"))
def revoke(modeladmin: ApiTokenAdmin, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
    """Revoke each selected token; their open sockets are closed."""
    count = 0
    for token in queryset.filter(revoked_at__isnull=True):
        services.token_revoke(token=token)
        count += 1
    revoked = ngettext("Revoked %(count)d token.", "Revoked %(count)d tokens.", count)
    modeladmin.message_user(request, revoked % {"count": count}, messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(ApiTokenModelAdmin):
    """Tokens: list, search, create for any user, revoke, delete."""

    list_display = ("name", "user", "display", "created", "last_used", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", accounts.by_name("user__"))
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    actions = [revoke]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        """Adding asks for the user and a name; the rest is set by the service."""
        if obj is None:
            return ("user", "name")
        return ("user", "name", "display", "created", "last_used", "revoked_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiToken | None = None
    ) -> tuple[str, ...]:
        """Only the name of an existing token can change."""
        if obj is None:
            return ()
        return ("user", "display", "created", "last_used", "revoked_at")

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm[ApiToken], change: bool
    ) -> None:
        """Create through the service (which makes the secret); later saves change the name."""
        if change:
            obj.save(update_fields=["name"])
            return
        token, plaintext = services.token_create(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.digest, obj.created = (
            token.pk,
            token.prefix,
            token.digest,
            token.created,
        )
        shownonce.remember(request, plaintext)

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> TemplateResponse:
        """Show the new token this once (it is not stored, and not put in a message cookie)."""
        return shownonce.shown_once(
            request,
            each_context=self.admin_site.each_context(request),
            template="admin/api/apitoken/created.html",
            title=_("API token created"),
            obj=obj,
        )

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        """Delete through the service, closing the token's sockets."""
        services.token_delete(token=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        """Delete each selected token through the service."""
        for token in queryset:
            services.token_delete(token=token)
