"""Token pages at /tokens/: list, create (the token is shown once), revoke."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from api import selectors, services
from api.forms import TokenCreateForm


def _page(request, *, form=None, created=None, plaintext=None, status=200):
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
def token_list(request):
    """The user's tokens and the form to create one."""
    return _page(request)


@never_cache
@login_required
@require_POST
def token_create(request):
    """Create a token and show it, this once: it is not stored and cannot be shown again."""
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    token, plaintext = services.token_create(user=request.user, name=form.cleaned_data["name"])
    return _page(request, created=token, plaintext=plaintext)


@login_required
@require_POST
def token_revoke(request, token_id: int):
    """Revoke one of the user's tokens; its open sockets are closed."""
    token = get_object_or_404(selectors.tokens_for_user(user=request.user), pk=token_id)
    services.token_revoke(token=token)
    return redirect("tokens")
