"""Sign-up pages (/signup/ and /signup/<link>/) and the staff's invitation page."""

from __future__ import annotations

import math
from datetime import timedelta

from django.contrib.auth import login
from django.contrib.auth.decorators import user_passes_test
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from chat import conf
from chat.permissions import AuthenticatedRequest, User, is_manager
from people import selectors, services
from people.forms import InvitationForm, SignupForm
from people.models import Invitation, InvitationState

# Why a link does not work, in the words the page uses; and its HTTP status.
REFUSALS: dict[str, tuple[Promise, Promise, int]] = {
    "unknown": (_("This link does not work"), _("There is no invitation at this address."), 404),
    InvitationState.USED_UP: (
        _("This invitation was used up"),
        _("Everyone it was made for has signed up with it already."),
        410,
    ),
    InvitationState.EXPIRED: (
        _("This invitation expired"),
        _("It was valid for a while only."),
        410,
    ),
    InvitationState.REVOKED: (
        _("This invitation was withdrawn"),
        _("A staff member revoked it."),
        410,
    ),
    services.CLOSED: (
        _("Sign-up is by invitation"),
        _("This server makes accounts for invited people only."),
        404,
    ),
}


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    """The page that says why this sign-up cannot happen, and what to do instead."""
    title, detail, status = REFUSALS[reason]
    context = {"title": title, "detail": detail, "reason": reason}
    return render(request, "people/signup_refused.html", context, status=status)


def _client_address(request: HttpRequest) -> str:
    """The address sign-ups are counted by (config.server sets it from a trusted proxy)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


@never_cache
def signup(request: HttpRequest, token: str | None = None) -> HttpResponse:
    """Sign up with an invitation link (or without, when CHAT_OPEN_SIGNUP is on); then chat."""
    invitation: Invitation | None = None
    if token is not None:
        invitation = selectors.invitation_for_token(token=token)
        if invitation is None:
            return _refused(request, "unknown")
        state = invitation.state()
        if state != InvitationState.USABLE:
            return _refused(request, state)
    elif not conf.CHAT_OPEN_SIGNUP:
        return _refused(request, services.CLOSED)

    form = SignupForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        verdict = services.signup_attempt(address=_client_address(request))
        if not verdict.allowed:
            minutes = max(1, math.ceil(verdict.retry_after / 60))
            wait = ngettext(
                "Too many sign-ups from your address. Try again in %(minutes)d minute.",
                "Too many sign-ups from your address. Try again in %(minutes)d minutes.",
                minutes,
            )
            form.add_error(None, wait % {"minutes": minutes})
            status = 429
        elif form.is_valid():
            try:
                user = services.signup(
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    invitation=invitation,
                )
            except services.SignupRefused as refused:
                if refused.reason != services.USERNAME_TAKEN:
                    return _refused(request, str(refused.reason))
                form.add_error("username", _("That username is taken. Pick another one."))
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect("chat")
        if status == 200:
            status = 400
    context = {"form": form, "invitation": invitation, "user_now": request.user}
    return render(request, "people/signup.html", context, status=status)


def _is_manager(user: User) -> bool:
    """Who makes and revokes invitations: the chat's managers (CHAT_MANAGER_PERMISSION, staff)."""
    return bool(user.is_authenticated and user.is_active and is_manager(user))


def _invitations_page(
    request: AuthenticatedRequest,
    *,
    form: InvitationForm | None = None,
    created: Invitation | None = None,
    link: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The staff's invitation page: recent links, the form, and a link just made (shown once)."""
    context = {
        "invitations": selectors.invitations_recent(),
        "form": form or InvitationForm(),
        "created": created,
        "link": link,
        "now": timezone.now(),
    }
    response = render(request, "people/invitations.html", context, status=status)
    return response


@never_cache
@user_passes_test(_is_manager)
def invitations(request: AuthenticatedRequest) -> HttpResponse:
    """Staff: list invitations, make one (its link is shown this once)."""
    if request.method != "POST":
        return _invitations_page(request)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _invitations_page(request, form=form, status=400)
    days = form.cleaned_data["expires_days"]
    invitation, secret = services.invitation_create(
        created_by=request.user,
        max_uses=form.cleaned_data["max_uses"],
        expires_at=timezone.now() + timedelta(days=days) if days else None,
        note=form.cleaned_data["note"],
    )
    link = request.build_absolute_uri(reverse("signup-invited", args=[secret]))
    return _invitations_page(request, created=invitation, link=link)


@user_passes_test(_is_manager)
@require_POST
def invitation_revoke(request: AuthenticatedRequest, invitation_id: int) -> HttpResponse:
    """Staff: revoke an invitation; its link stops working at once."""
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    services.invitation_revoke(invitation=invitation)
    return redirect("invitations")
