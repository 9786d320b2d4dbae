"""Token pages at /tokens/: list, create (the token is shown once), revoke."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from api import selectors, services
from api.forms import TokenCreateForm
from api.models import ApiToken
from chat.permissions import AuthenticatedRequest


def _page(
    request: AuthenticatedRequest,
    *,
    form: TokenCreateForm | None = None,
    created: ApiToken | None = None,
    plaintext: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The token page: the user's tokens, the form, and a token just created (shown once)."""
    context = {
        "tokens": selectors.tokens_for_user(user=request.user),
        "form": form or TokenCreateForm(),
        "created": created,
        "plaintext": plaintext,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
    }
    return render(request, "api/tokens.html", context, status=status)


@never_cache
@login_required
def token_list(request: AuthenticatedRequest) -> HttpResponse:
    """The user's tokens and the form to create one."""
    return _page(request)


@never_cache
@login_required
@require_POST
def token_create(request: AuthenticatedRequest) -> HttpResponse:
    """Create a token and show it, this once: it is not stored and cannot be shown again."""
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    token, plaintext = services.token_create(user=request.user, name=form.cleaned_data["name"])
    return _page(request, created=token, plaintext=plaintext)


@login_required
@require_POST
def token_revoke(request: AuthenticatedRequest, token_id: int) -> HttpResponseRedirect:
    """Revoke one of the user's tokens; its open sockets are closed."""
    token = get_object_or_404(selectors.tokens_for_user(user=request.user), pk=token_id)
    services.token_revoke(token=token)
    return redirect("tokens")
