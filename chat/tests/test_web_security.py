"""Web hardening: CSP, framing, CSRF, cookies, login throttling, deployment checks."""

import os
import subprocess
import sys

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def test_pages_carry_a_content_security_policy_without_inline_script(alice):
    """Every page forbids inline script and framing through its CSP."""
    client = Client()
    for response in (client.get("/login/"), _logged_in(alice).get("/")):
        policy = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
        assert directives["script-src"] == "'self'"
        assert "unsafe-inline" not in policy
        assert directives["frame-ancestors"] == "'none'"


def test_pages_refuse_to_be_framed():
    """X-Frame-Options: DENY against clickjacking."""
    assert Client().get("/login/")["X-Frame-Options"] == "DENY"


def test_the_chat_page_has_no_inline_script(alice):
    """Only script files, and the JSON data island, appear on the chat page."""
    body = _logged_in(alice).get("/").content.decode()
    for tag in body.split("<script")[1:]:
        head = tag.split(">", 1)[0]
        assert "src=" in head or 'type="application/json"' in head, head


def test_login_form_without_csrf_token_is_refused(alice):
    """A cross-site login POST without the CSRF token gets 403."""
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 403


def test_logout_needs_a_post_with_csrf(alice):
    """GET /logout/ does not log out; a POST without token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 403
    assert client.get("/").status_code == 200


def test_repeated_failed_logins_lock_the_account_out_from_that_address(settings, alice):
    """After LOGIN_FAILURE_LIMIT failures even the right password is refused for a while."""
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 429  # the failure that reaches the limit locks
    response = client.post("/login/", {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert client.get("/").status_code == 302


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _production_settings(**env) -> dict:
    """Settings as a production process sees them, read in a fresh interpreter."""
    code = (
        "import django, json; from django.conf import settings as s; django.setup(); "
        "print(json.dumps({k: getattr(s, k) for k in ('SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'DEBUG', 'SESSION_COOKIE_HTTPONLY')}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SECURE_"))}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    import json

    return json.loads(done.stdout)


def test_production_defaults_use_secure_cookies():
    """With DEBUG off (the default), session and CSRF cookies are Secure and HttpOnly."""
    values = _production_settings(SECRET_KEY="x" * 60)
    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "DEBUG": False,
        "SESSION_COOKIE_HTTPONLY": True,
    }


def test_production_refuses_to_start_without_a_secret_key():
    """DEBUG off and no SECRET_KEY: settings fail with a message that names the fix."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "SECRET_KEY_FILE")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in done.stderr
