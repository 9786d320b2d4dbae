"""Users, sessions, rooms, tokens and messages made for tests and the benchmark.

Plain ORM code with Django set up: the test process calls it directly
(chat/tests/conftest.py), and ``manage.py testkit`` runs it against a live
server's database (testkit/management/commands/testkit.py). Users get known
passwords, so nothing here is for production. Users are Django's own
(the project keeps the default AUTH_USER_MODEL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils.crypto import get_random_string

from api.models import ApiToken
from api.services import token_create, token_revoke
from chat.models import Message, Room
from chat.services import message_send, room_post

PASSWORD = "pw-for-tests"  # make_user's default (conftest); live servers use NAME-pw-1234
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def create_user(username: str, *, password: str = PASSWORD, staff: bool = False) -> User:
    """A user who can log in with ``password``; staff if asked."""
    return User.objects.create_user(username=username, password=password, is_staff=staff)


def grant(username: str, permissions: Iterable[str]) -> None:
    """Give ``username`` model permissions ("app_label.codename"), e.g. to edit in the admin."""
    from django.contrib.auth.models import Permission

    user = User.objects.get(username=username)
    for name in permissions:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def create_room(title: str, *, staff_only: bool = False) -> Room:
    """A room; staff-only if asked."""
    return Room.objects.create(title=title, staff_only=staff_only)


def create_token(username: str, name: str = "tests") -> str:
    """An API token for ``username``; returns its plaintext (never stored)."""
    user = User.objects.get(username=username)
    return token_create(user=user, name=name)[1]


def revoke_token(name: str) -> None:
    """Revoke the token called ``name``, as its owner would on the tokens page."""
    token_revoke(token=ApiToken.objects.get(name=name))


def post_messages(room_id: int, texts: Iterable[str], username: str | None = None) -> None:
    """Post ``texts`` to a room through room_post (no rate limit, no checks), as ``username``."""
    user = User.objects.get(username=username) if username else None
    for text in texts:
        room_post(room_id=room_id, user=user, text=text)


def send_messages(room_id: int, texts: Iterable[str], username: str) -> None:
    """Send ``texts`` as ``username`` through message_send, as a socket or the API does."""
    user = User.objects.get(username=username)
    for text in texts:
        message_send(user=user, room_id=room_id, text=text)


def date_messages(room_id: int, times: Mapping[str, str]) -> int:
    """Give stored messages other created times ({seq: ISO 8601 time}); returns how many changed.

    For tests of how the UI shows times and days: messages are otherwise stamped now.
    """
    changed = 0
    for seq, time in times.items():
        created = datetime.fromisoformat(time)
        if created.tzinfo is None:
            raise ValueError(f"{time!r} has no UTC offset: give one, as the server stores UTC")
        changed += Message.objects.filter(room_id=room_id, seq=int(seq)).update(created=created)
    return changed


def bearer(user: User) -> Client:
    """A test client that sends a fresh token of ``user`` as ``Authorization: Bearer``."""
    _, plaintext = token_create(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {plaintext}"})


def session_cookie(user: User) -> bytes:
    """A Cookie header value carrying a real logged-in session for ``user``."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def create_logged_in_users(count: int, prefix: str = "bench") -> list[str]:
    """``count`` users (PREFIX0, PREFIX1, ...), each with one session; returns the session keys.

    Made in bulk (no password, no login round trip), as the benchmark needs thousands.
    """
    users = User.objects.bulk_create(
        [User(username=f"{prefix}{i}") for i in range(count)], batch_size=2000
    )
    store = SessionStore()
    expires = store.get_expiry_date()
    sessions = Session.objects.bulk_create(
        [
            Session(
                session_key=get_random_string(32, VALID_KEY_CHARS),
                expire_date=expires,
                session_data=store.encode(
                    {
                        SESSION_KEY: str(user.pk),
                        BACKEND_SESSION_KEY: MODEL_BACKEND,
                        HASH_SESSION_KEY: user.get_session_auth_hash(),
                    }
                ),
            )
            for user in users
        ],
        batch_size=2000,
    )
    return [session.session_key for session in sessions]


def create_rooms(count: int, prefix: str = "Bench ") -> list[int]:
    """``count`` rooms titled PREFIX0, PREFIX1, ...; returns their ids."""
    rooms = Room.objects.bulk_create([Room(title=f"{prefix}{i}") for i in range(count)])
    return [room.pk for room in rooms]
