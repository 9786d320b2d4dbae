"""What a project embedding the chat is told at startup (chat/checks.py), and the hooks it sets.

The checks run against real settings through Django's check framework; the
manager hook through the same permission predicates the socket and the REST
API use.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core import checks
from django.test import override_settings

from chat import conf, permissions
from chat.models import Room

pytestmark = pytest.mark.django_db(transaction=True)


def _ids() -> set[str]:
    """The ids of every chat check message under the current settings."""
    return {m.id for m in checks.run_checks() if m.id and m.id.startswith("multichat.")}


def test_standalone_settings_pass_every_check():
    """The standalone server's own settings raise none of the chat's checks."""
    assert _ids() == set()


def test_missing_channels_app_is_an_error(settings):
    """Without channels in INSTALLED_APPS the check names the app to add."""
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "channels"]
    errors = [m for m in checks.run_checks() if m.id == "multichat.E001"]
    assert len(errors) == 1 and "'channels'" in errors[0].msg


def test_missing_channel_layers_is_an_error():
    """No CHANNEL_LAYERS at all: E003, with the setting to add in its hint."""
    with override_settings(CHANNEL_LAYERS={}):
        assert "multichat.E003" in _ids()


def test_unimportable_layer_backend_is_an_error():
    """A layer backend that cannot be imported is E004, not a traceback on the first socket."""
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "nowhere.Layer"}}):
        assert "multichat.E004" in _ids()


def test_missing_asgi_application_is_an_error():
    """ASGI_APPLICATION unset: E005, pointing at chat.asgi.wrap."""
    with override_settings(ASGI_APPLICATION=None):
        found = [m for m in checks.run_checks() if m.id == "multichat.E005"]
    assert len(found) == 1 and "chat.asgi.wrap" in (found[0].hint or "")


def test_signed_cookie_sessions_are_an_error():
    """A session engine the socket cannot look up again is refused at startup (E006)."""
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies"):
        assert "multichat.E006" in _ids()


def test_missing_session_middleware_is_an_error(settings):
    """The chat page's login needs the session and auth middleware (E002)."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SessionMiddleware" not in m]
    assert "multichat.E002" in _ids()


def test_bad_socket_path_and_base_template_are_errors():
    """A socket path without slashes (E008) and a base template nobody has (E010)."""
    with override_settings(CHAT_SOCKET_PATH="chat/stream", CHAT_BASE_TEMPLATE="nowhere.html"):
        assert {"multichat.E008", "multichat.E010"} <= _ids()


def test_unset_setting_reads_its_default(settings):
    """A chat setting the project does not set reads its documented default."""
    del settings.CHAT_SEND_RATE
    assert conf.CHAT_SEND_RATE == conf.DEFAULTS["CHAT_SEND_RATE"] == 5.0


def test_a_changed_setting_is_read_again(settings):
    """conf keeps what it read; a changed setting (override_settings) is read anew."""
    settings.CHAT_SOCKET_QUEUE_MAX = 7
    assert conf.CHAT_SOCKET_QUEUE_MAX == 7
    settings.CHAT_SOCKET_QUEUE_MAX = 8
    assert conf.CHAT_SOCKET_QUEUE_MAX == 8


def test_manager_default_is_staff(make_user):
    """Unset CHAT_MANAGER_PERMISSION: staff manage, others do not (the standalone rule)."""
    assert permissions.is_manager(make_user("boss", staff=True))
    assert not permissions.is_manager(make_user("carol"))


def test_manager_by_permission_enters_staff_only_rooms(make_user):
    """A named permission decides who enters staff-only rooms, whatever is_staff says."""
    room = Room.objects.create(title="ops", staff_only=True)
    holder, staff = make_user("dave"), make_user("erin", staff=True)
    holder.user_permissions.add(Permission.objects.get(codename="change_room"))
    holder = type(holder).objects.get(pk=holder.pk)  # a fresh object: no cached permissions
    with override_settings(CHAT_MANAGER_PERMISSION="chat.change_room"):
        assert permissions.can_enter(holder, room)
        assert not permissions.can_enter(staff, room)
        assert Room.objects.filter(permissions.enterable_rooms(holder), pk=room.pk).exists()


def test_manager_by_callable(make_user):
    """A dotted callable decides: here, anyone whose name starts with "ops-"."""
    ops, other = make_user("ops-frank"), make_user("grace", staff=True)
    with override_settings(CHAT_MANAGER_PERMISSION="chat.tests.test_embedding_checks.ops_only"):
        assert permissions.is_manager(ops)
        assert not permissions.is_manager(other)


def test_the_admin_link_is_for_staff_and_the_manager_links_for_managers(make_user):
    """A manager by the hook who is not staff gets the managers' links but not Admin (the
    admin would refuse them); staff who are not managers get Admin only."""
    from django.test import Client

    Room.objects.create(title="Lobby")
    ops, staff = make_user("ops-ivan"), make_user("judy", staff=True)
    with override_settings(CHAT_MANAGER_PERMISSION="chat.tests.test_embedding_checks.ops_only"):
        for user, admin, invitations in ((ops, False, True), (staff, True, False)):
            client = Client()
            client.force_login(user)
            page = client.get("/").content.decode()
            assert ('class="admin-link"' in page) is admin, user
            assert ('class="invitations-link"' in page) is invitations, user
            assert client.get("/invitations/").status_code == (200 if invitations else 302)


def ops_only(user) -> bool:
    """The callable test_manager_by_callable names."""
    return user.get_username().startswith("ops-")


def test_the_multichat_tag_mounts_the_client_for_a_user_and_a_link_for_anyone_else(make_user):
    """``{% multichat %}`` in any page: the client with its config for a logged-in user, with
    its own stylesheet; a sign-in link back to the page for an anonymous visitor."""
    from django.contrib.auth.models import AnonymousUser
    from django.template import engines
    from django.test import RequestFactory

    Room.objects.create(title="Lobby")
    page = engines["django"].from_string("<main>{% load multichat %}{% multichat %}</main>")
    request = RequestFactory().get("/somewhere/?x=1")
    request.user = make_user("hanna")
    html = page.render({}, request)
    assert 'id="chat-config"' in html and "Lobby" in html
    assert "chat/chat.css" in html and 'id="conn-state"' in html
    request.user = AnonymousUser()
    html = page.render({}, request)
    assert 'id="chat-config"' not in html
    assert 'href="/login/?next=%2Fsomewhere%2F%3Fx%3D1"' in html


async def test_a_socket_of_a_manager_by_permission_joins_and_posts_a_warning(
    connect, make_user, staff_room, settings
):
    """With CHAT_MANAGER_PERMISSION naming a permission, its holder's socket (the rule asked on
    the event loop) joins the staff-only room and posts a warning; is_staff alone does not."""
    from channels.db import database_sync_to_async

    settings.CHAT_MANAGER_PERMISSION = "chat.change_room"

    def holder_and_staff():
        holder = make_user("ivan")
        holder.user_permissions.add(Permission.objects.get(codename="change_room"))
        return holder, make_user("judy", staff=True)

    holder, staff = await database_sync_to_async(holder_and_staff)()
    sock = await connect(holder)
    assert (await sock.join(staff_room.pk))["join"] == staff_room.pk
    await sock.send({"command": "send", "room": staff_room.pk, "message": "careful", "msg_type": 1})
    posted = await sock.recv_until(lambda f: f.get("message") == "careful" or "error" in f)
    assert posted.get("msg_type") == 1, posted
    other = await connect(staff)
    assert (await other.join(staff_room.pk))["error"] == "ROOM_ACCESS_DENIED"
