"""The HTTP side: login, logout, the home page, the health check, the demo set-up."""

import io
import json
import logging
import socket
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from chat import views
from chat.models import Room
from testkit.factories import post_messages

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_visitor_of_home_is_sent_to_login():
    """/ asks anonymous visitors to log in first."""
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_login_lands_on_home_and_logout_returns_to_login(alice):
    """Logging in with the login form lands on /; logging out (POST) goes back to /login/."""
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'name="password"' in page.content
    response = client.post("/login/", {"username": "alice", "password": "pw-for-tests"})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert (response.status_code, response["Location"]) == (302, "/login/")
    assert client.get("/").status_code == 302


def test_logout_says_so_on_the_login_page_once(alice):
    """After logging out, the login page says "You have been logged out", and only that once."""
    client = Client()
    client.force_login(alice)
    page = client.post("/logout/", follow=True)
    assert page.redirect_chain == [("/login/", 302)]
    assert b'role="status">You have been logged out.</p>' in page.content
    assert b"logged out" not in client.get("/login/").content


def test_favicon_redirects_to_the_icon_without_a_warning(caplog):
    """/favicon.ico (the admin pages have no icon link) leads to the SVG icon; nothing is logged."""
    client = Client()
    with caplog.at_level(logging.INFO):
        response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith(".svg") and "/static/chat/favicon" in response["Location"]
    assert "max-age=86400" in response["Cache-Control"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    served = finders.find(response["Location"].removeprefix(django_settings.STATIC_URL))
    assert served and "<svg" in Path(served).read_text()


def test_login_with_a_wrong_password_says_so(alice):
    """A failed login shows an error and does not log in."""
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"do not match" in response.content
    assert client.get("/").status_code == 302


def test_home_lists_the_rooms_a_non_staff_user_may_enter(alice, room, staff_room):
    """Staff-only rooms are not shown to non-staff users."""
    client = Client()
    client.force_login(alice)
    body = client.get("/").content.decode()
    assert "General" in body
    assert "Staff lounge" not in body


def test_home_shows_staff_only_rooms_to_staff(staff, room, staff_room):
    """Staff see every room."""
    client = Client()
    client.force_login(staff)
    body = client.get("/").content.decode()
    assert "General" in body and "Staff lounge" in body


def test_home_without_rooms_says_so_and_links_staff_to_the_admin(alice, staff):
    """With no rooms the page says so; staff get a link to add one, others do not."""
    client = Client()
    client.force_login(staff)
    body = client.get("/").content.decode()
    assert "There are no rooms in your list." in body
    assert 'href="/admin/chat/room/add/"' in body
    client.force_login(alice)
    body = client.get("/").content.decode()
    assert "There are no rooms in your list." in body
    assert "/admin/chat/room/add/" not in body


def test_healthz_is_200_when_database_and_layer_answer():
    """/healthz reports both checks."""
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


@pytest.mark.redis
def test_healthz_is_503_when_the_channel_layer_is_unreachable(settings):
    """With the Redis layer pointing at a closed port, /healthz answers 503 naming the layer."""
    from testkit.servers import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL]},
        }
    }
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["channel_layer"].startswith("failed")


@pytest.mark.redis
def test_healthz_names_a_shard_that_does_not_answer_in_time(settings):
    """A layer server that takes the connection and never answers: named, within the check's time.

    (A shard that is down holds its connection lock through other publishes'
    retries: its ping then waits, and the answer must still say which shard.)
    """
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nothing ever reads or answers
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": settings.REDIS_URL, "retry": None}]},
            }
        }
        started = time.monotonic()
        response = Client().get("/healthz")
        took = time.monotonic() - started
    finally:
        silent.close()
    assert response.status_code == 503
    assert response.json()["channel_layer"] == "failed: shard 0: TimeoutError", response.json()
    assert took < views.HEALTH_TIMEOUT + 1, took


def test_demo_setup_creates_an_admin_and_rooms_once_and_prints_the_login(settings, tmp_path):
    """The first run creates the demo admin and rooms and prints the login; later runs do not."""
    settings.DATA_DIR = tmp_path
    out = io.StringIO()
    call_command("demo_setup", url="http://127.0.0.1:8000/", stdout=out)
    text = out.getvalue()
    assert "open http://127.0.0.1:8000/" in text
    password = text.split("Log in as admin with password ")[1].split()[0]
    response = Client().post("/login/", {"username": "admin", "password": password})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert Room.objects.count() == 3
    assert Room.objects.filter(staff_only=True).count() == 1

    Room.objects.filter(title="Random").update(title="Renamed by the owner")
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    assert f"with password {password}" in out.getvalue()
    assert Room.objects.count() == 3
    assert Room.objects.filter(title="Renamed by the owner").exists()
    assert get_user_model().objects.count() == 1


def test_demo_setup_never_touches_an_existing_database(settings, tmp_path, alice, room):
    """With users and rooms already there, nothing is created and no password is printed."""
    settings.DATA_DIR = tmp_path
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    assert get_user_model().objects.count() == 1
    assert list(Room.objects.values_list("title", flat=True)) == ["General"]
    assert "password" not in out.getvalue().split("open")[1].split("\n")[1]
    assert "createsuperuser" in out.getvalue()


def test_home_carries_unread_counts_and_mentions_for_the_page(alice, bob, room):
    """The page starts from the same counts as /api/rooms: badge, read position, mentions."""
    post_messages(room.pk, ["first"], username="alice")  # marks alice's own post read
    post_messages(room.pk, ["news", "@alice look"], username="bob")
    client = Client()
    client.force_login(alice)
    body = client.get("/").content.decode()
    config = json.loads(body.split('id="chat-config" type="application/json">')[1].split("<")[0])
    assert config["rooms"] == [
        {
            "id": room.pk,
            "title": "General",
            "staffOnly": False,
            "kind": "room",
            "members": None,
            "createdBy": None,
            "left": False,
            "lastSeq": 3,
            "readSeq": 1,
            "posts": 3,
            "readPosts": 1,
            "mentions": 1,
        }
    ]
