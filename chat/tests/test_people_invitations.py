"""Invitations and sign-up: links single or multi use, expiring, revocable; open sign-up; limits."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone

from people import selectors, services
from people.models import Invitation, InvitationState, Profile

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-and-unusual-pass-42"


def sign_up(client: Client, url: str, username: str, password: str = PASSWORD, again=None):
    """POST the sign-up form at ``url``."""
    return client.post(
        url, {"username": username, "password1": password, "password2": again or password}
    )


def link(secret: str) -> str:
    return f"/signup/{secret}/"


def test_a_single_use_link_signs_up_one_person_who_lands_in_the_chat_logged_in():
    """The first sign-up works and is logged in; the link then shows a "used up" page, not a 500."""
    invitation, secret = services.invitation_create(created_by=None)
    client = Client()
    assert client.get(link(secret)).status_code == 200
    response = sign_up(client, link(secret), "newbie")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200  # logged in: the chat page, not the login
    user = get_user_model().objects.get(username="newbie")
    assert user.check_password(PASSWORD) and not user.is_staff
    assert Profile.objects.get(user=user).invitation == invitation
    invitation.refresh_from_db()
    assert invitation.uses == 1 and invitation.state() == InvitationState.USED_UP

    late = Client()
    page = late.get(link(secret))
    assert page.status_code == 410
    assert "used up" in page.content.decode()
    refused = sign_up(late, link(secret), "second")
    assert refused.status_code == 410
    assert not get_user_model().objects.filter(username="second").exists()


def test_a_multi_use_link_signs_up_as_many_people_as_it_allows():
    """A three-use link makes three accounts, and refuses the fourth."""
    invitation, secret = services.invitation_create(created_by=None, max_uses=3)
    for name in ("ann", "ben", "cat"):
        assert sign_up(Client(), link(secret), name).status_code == 302
    assert sign_up(Client(), link(secret), "dan").status_code == 410
    invitation.refresh_from_db()
    assert invitation.uses == 3
    assert set(get_user_model().objects.values_list("username", flat=True)) == {"ann", "ben", "cat"}


def test_an_expired_link_shows_why_and_signs_no_one_up():
    """After its expiry a link answers 410 "expired"; before it, it works."""
    _, secret = services.invitation_create(
        created_by=None, max_uses=5, expires_at=timezone.now() + timedelta(hours=1)
    )
    assert sign_up(Client(), link(secret), "early").status_code == 302
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = Client().get(link(secret))
    assert page.status_code == 410 and "expired" in page.content.decode()
    with pytest.raises(services.SignupRefused) as refused:
        services.signup(username="late", password=PASSWORD, invitation=Invitation.objects.get())
    assert refused.value.reason == InvitationState.EXPIRED


def test_a_revoked_link_shows_why_and_signs_no_one_up(staff):
    """Revoked from the staff page: the link answers 410 "withdrawn"."""
    invitation, secret = services.invitation_create(created_by=staff, max_uses=5)
    client = Client()
    client.force_login(staff)
    response = client.post(f"/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state() == InvitationState.REVOKED
    page = Client().get(link(secret))
    assert page.status_code == 410 and "withdrawn" in page.content.decode()
    assert sign_up(Client(), link(secret), "nobody").status_code == 410


def test_an_unknown_link_is_a_clear_404_page():
    """A made-up or mistyped link: 404 with a page that says so."""
    services.invitation_create(created_by=None)
    for secret in ("not-a-real-invitation", "x" * 500):
        page = Client().get(link(secret))
        assert page.status_code == 404
        assert "This link does not work" in page.content.decode()


def test_only_the_digest_of_a_link_is_stored():
    """The secret is in no column; its SHA-256 finds the invitation."""
    invitation, secret = services.invitation_create(created_by=None)
    row = Invitation.objects.filter(pk=invitation.pk).values().get()
    assert all(secret not in str(value) for value in row.values())
    assert selectors.invitation_for_token(token=secret) == invitation
    assert selectors.invitation_for_token(token=secret[:-1]) is None


def _race(secret_users: list[tuple[Invitation, str]]) -> list[str]:
    """Run one sign-up per (invitation, username) in its own thread, all at once."""
    barrier = threading.Barrier(len(secret_users))
    outcomes: list[str] = []

    def run(invitation: Invitation, username: str) -> None:
        try:
            barrier.wait(timeout=10)
            services.signup(username=username, password=PASSWORD, invitation=invitation)
            outcomes.append("ok")
        except services.SignupRefused as refused:
            outcomes.append(str(refused.reason))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in secret_users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


def test_two_sign_ups_racing_for_a_single_use_link_one_wins():
    """Two threads sign up at once with a one-use link: one account is made, one refused."""
    invitation, _ = services.invitation_create(created_by=None)
    copies = [Invitation.objects.get(pk=invitation.pk) for _ in range(2)]  # both read it usable
    outcomes = _race([(copies[0], "racer1"), (copies[1], "racer2")])
    assert outcomes == ["ok", str(InvitationState.USED_UP)]
    assert get_user_model().objects.filter(username__startswith="racer").count() == 1
    invitation.refresh_from_db()
    assert invitation.uses == 1


def test_a_taken_username_gives_the_use_back():
    """The account cannot be made (name taken meanwhile): the use is rolled back with it."""
    get_user_model().objects.create_user("taken", password=PASSWORD)
    invitation, secret = services.invitation_create(created_by=None)
    with pytest.raises(services.SignupRefused) as refused:
        services.signup(username="taken", password=PASSWORD, invitation=invitation)
    assert refused.value.reason == services.USERNAME_TAKEN
    invitation.refresh_from_db()
    assert invitation.uses == 0
    assert sign_up(Client(), link(secret), "free").status_code == 302


@pytest.mark.parametrize(
    ("username", "password", "again", "field", "says"),
    [
        ("has space", PASSWORD, None, "username", "valid username"),
        ("Alice", PASSWORD, None, "username", "taken"),  # alice exists: no case-twin either
        ("newone", "short", None, "password1", "too short"),
        ("newone", "password123", None, "password1", "too common"),
        ("newone", "12345678901234", None, "password1", "entirely numeric"),
        ("newone", PASSWORD, "something-else-entirely", "password2", "differ"),
    ],
)
def test_sign_up_validates_username_and_password(alice, username, password, again, field, says):
    """Django's username rules and password validators apply; nothing is made or used up."""
    invitation, secret = services.invitation_create(created_by=None)
    response = sign_up(Client(), link(secret), username, password, again)
    assert response.status_code == 400
    form = response.context["form"]
    assert says in " ".join(form.errors[field])
    invitation.refresh_from_db()
    assert invitation.uses == 0
    assert get_user_model().objects.count() == 1


def test_the_sign_up_form_needs_the_csrf_token():
    """A cross-site post without Django's CSRF token is refused (403)."""
    _, secret = services.invitation_create(created_by=None)
    client = Client(enforce_csrf_checks=True)
    assert sign_up(client, link(secret), "csrfless").status_code == 403
    page = client.get(link(secret))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    response = client.post(
        link(secret),
        {
            "username": "withcsrf",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 302


def test_open_sign_up_is_off_by_default_and_the_login_page_offers_none(settings):
    """Without CHAT_OPEN_SIGNUP, /signup/ says "by invitation" (404) and makes nothing."""
    assert settings.CHAT_OPEN_SIGNUP is False
    page = Client().get("/signup/")
    assert page.status_code == 404 and "by invitation" in page.content.decode()
    assert sign_up(Client(), "/signup/", "walkin").status_code == 404
    assert not get_user_model().objects.exists()
    assert 'href="/signup/"' not in Client().get("/login/").content.decode()


def test_open_sign_up_on_lets_anyone_sign_up_at_signup(settings):
    """With CHAT_OPEN_SIGNUP on, /signup/ makes an account; the login page links to it."""
    settings.CHAT_OPEN_SIGNUP = True
    assert 'href="/signup/"' in Client().get("/login/").content.decode()
    assert sign_up(Client(), "/signup/", "walkin").status_code == 302
    assert Profile.objects.get(user__username="walkin").invitation is None


def test_sign_ups_from_one_address_are_rate_limited(settings):
    """Past CHAT_SIGNUP_PER_HOUR posts from one address: 429 and no account, others unaffected."""
    settings.CHAT_SIGNUP_PER_HOUR = 2
    _, secret = services.invitation_create(created_by=None, max_uses=10)
    here = Client(REMOTE_ADDR="203.0.113.7")
    assert sign_up(here, link(secret), "one", "short").status_code == 400  # a failure counts
    assert sign_up(here, link(secret), "two").status_code == 302
    refused = sign_up(Client(REMOTE_ADDR="203.0.113.7"), link(secret), "three")
    assert refused.status_code == 429
    assert "Too many sign-ups" in refused.content.decode()
    assert not get_user_model().objects.filter(username="three").exists()
    there = Client(REMOTE_ADDR="198.51.100.1")
    assert sign_up(there, link(secret), "four").status_code == 302


def test_staff_create_an_invitation_on_the_staff_page_and_see_the_link_once(staff, alice):
    """/invitations/: the link is shown once, after creating it; non-staff are kept out."""
    client = Client()
    client.force_login(staff)
    response = client.post("/invitations/", {"max_uses": 4, "expires_days": 2, "note": "team"})
    assert response.status_code == 200
    body = response.content.decode()
    url = re.search(r'id="new-link"[^>]*value="(http://testserver/signup/[^"]+/)"', body)[1]
    secret = url.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get()
    assert (invitation.max_uses, invitation.note, invitation.created_by) == (4, "team", staff)
    assert timedelta(days=1, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=2)
    assert secret not in client.get("/invitations/").content.decode()
    assert sign_up(Client(), f"/signup/{secret}/", "teammate").status_code == 302

    outsider = Client()
    outsider.force_login(alice)
    assert outsider.get("/invitations/").status_code == 302  # to the login page
    assert outsider.post("/invitations/", {"max_uses": 1, "expires_days": 1}).status_code == 302
    assert Invitation.objects.count() == 1


def test_staff_create_an_invitation_in_the_admin_with_the_link_shown_once():
    """The admin's add form makes the invitation through the service and shows the link once."""
    root = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(root)
    response = client.post(
        "/admin/people/invitation/add/", {"max_uses": 2, "expires_at_0": "", "note": "admin"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    url = re.search(r'id="invitation-link"[^>]*value="([^"]+)"', response.content.decode())[1]
    invitation = Invitation.objects.get()
    assert (invitation.max_uses, invitation.created_by, invitation.expires_at) == (2, root, None)
    assert sign_up(Client(), url.replace("http://testserver", ""), "viaadmin").status_code == 302
    client.post(
        "/admin/people/invitation/",
        {"action": "revoke", "_selected_action": [invitation.pk]},
    )
    invitation.refresh_from_db()
    assert invitation.state() == InvitationState.REVOKED


def test_manage_py_invite_prints_a_working_link():
    """``manage.py invite --uses 2 --expires 7d`` prints the link; it signs up two people."""
    out, err = StringIO(), StringIO()
    call_command("invite", "--uses", "2", "--expires", "7d", stdout=out, stderr=err)
    url = out.getvalue().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/signup/[\w-]+/", url), url
    assert "2 people" in err.getvalue()
    invitation = Invitation.objects.get()
    assert invitation.max_uses == 2
    assert timedelta(days=6, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=7)
    path = url.removeprefix("http://127.0.0.1:8000")
    assert sign_up(Client(), path, "cli1").status_code == 302
    assert sign_up(Client(), path, "cli2").status_code == 302
    assert sign_up(Client(), path, "cli3").status_code == 410


def test_manage_py_invite_refuses_a_bad_expiry():
    """An expiry it cannot read names the forms it takes; nothing is made."""
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="30m, 12h, 7d"):
        call_command("invite", "--expires", "soon", stdout=StringIO())
    assert not Invitation.objects.exists()
