"""The reads made at every connect and join, compiled once (chat.compiled), answer as the ORM does.

The handshake reads the session and its user with compiled queries and
decides the plain cases itself; these tests hold it to Django's own
``auth.get_user`` for every kind of session, and the join's one-query read
to ``room_for_user`` and ``read_positions``.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils import timezone

from chat import access, selectors
from chat.auth import _user_of
from chat.compiled import Compiled
from chat.errors import ChatError, ErrorCode
from chat.models import ReadPosition, Room, RoomKind, RoomMember
from testkit.factories import session_cookie

pytestmark = pytest.mark.django_db

Store = import_module(settings.SESSION_ENGINE).SessionStore


def _key(user) -> str:
    """A real logged-in session's key for ``user``."""
    return session_cookie(user).decode().split("=", 1)[1]


def _django_user(key: str | None):
    """What Django itself makes of the session ``key`` (a fresh store)."""
    request = HttpRequest()
    request.session = Store(key)
    return auth.get_user(request)


def _same(ours, theirs) -> None:
    assert type(ours) is type(theirs)
    if not isinstance(theirs, AnonymousUser):
        assert ours.pk == theirs.pk
        assert ours.get_session_auth_hash() == theirs.get_session_auth_hash()


def test_a_live_session_gives_its_user_as_django_does(alice):
    """A logged-in session: the same user, every field loaded."""
    key = _key(alice)
    ours = _user_of(Store(key))
    _same(ours, _django_user(key))
    assert (ours.username, ours.is_staff, ours.is_active) == (
        alice.username,
        alice.is_staff,
        alice.is_active,
    )


def test_a_missing_or_expired_session_is_anonymous(alice):
    """No such key, no key, and an expired session all give AnonymousUser."""
    key = _key(alice)
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    for candidate in (key, "nosuchsessionkey12345", None):
        session = Store(candidate)
        ours = _user_of(session)
        assert isinstance(ours, AnonymousUser)
        _same(ours, _django_user(candidate))
        assert session.session_key is None  # as SessionStore.load leaves it


def test_an_inactive_or_deleted_user_is_anonymous(alice, bob):
    """A deactivated user and a deleted one: anonymous, as ModelBackend.get_user says."""
    alice_key, bob_key = _key(alice), _key(bob)
    alice.is_active = False
    alice.save()
    bob.delete()
    for key in (alice_key, bob_key):
        ours = _user_of(Store(key))
        assert isinstance(ours, AnonymousUser)
        _same(ours, _django_user(key))


def test_a_changed_password_is_left_to_django_which_flushes_the_session(alice):
    """A session hash that no longer matches: anonymous, and the session is flushed (Django)."""
    key = _key(alice)
    alice.set_password("changed-elsewhere")
    alice.save()
    assert isinstance(_user_of(Store(key)), AnonymousUser)
    assert not Session.objects.filter(session_key=key).exists()


def test_a_session_without_a_hash_is_refused_like_django(alice):
    """A session whose hash was removed: Django refuses it; so does the handshake."""
    key = _key(alice)
    session = Store(key)
    del session[HASH_SESSION_KEY]
    session.save()
    expected = _django_user(key)
    assert isinstance(expected, AnonymousUser)
    key = _key(alice)  # Django flushed the first session: make the case again
    session = Store(key)
    del session[HASH_SESSION_KEY]
    session.save()
    assert isinstance(_user_of(Store(key)), AnonymousUser)


def test_the_open_re_read_sees_a_live_and_an_ended_session(alice):
    """access.read for one socket: the user, and whether its session still holds."""
    key = _key(alice)
    credentials = access.Credentials(user_id=alice.pk, session=Store(key), session_hash=None)
    snapshot = access.read([credentials], [])
    assert snapshot.users[alice.pk].username == alice.username
    assert key in snapshot.live_keys
    Session.objects.filter(session_key=key).delete()
    assert key not in access.read([credentials], []).live_keys


def test_the_join_read_agrees_with_room_for_user_and_read_positions(alice, staff, room):
    """room_for_join: the room's fields and the user's read position, as the two selectors say."""
    ReadPosition.objects.create(user=alice, room=room, seq=3, posts=2)
    Room.objects.filter(pk=room.pk).update(last_seq=5, posts=4)
    joined = selectors.room_for_join(user=alice, room_id=room.pk)
    found = selectors.room_for_user(user=alice, room_id=room.pk)
    assert (joined.title, joined.staff_only, joined.last_seq, joined.posts) == (
        found.title,
        found.staff_only,
        found.last_seq,
        found.posts,
    )
    assert (joined.read_seq, joined.read_posts) == (3, 2)
    assert joined.members is None
    fresh = selectors.room_for_join(user=staff, room_id=room.pk)
    assert (fresh.read_seq, fresh.read_posts) == (0, 0)


def test_the_join_read_refuses_as_room_for_user_does(alice, bob, staff, staff_room):
    """No such room, a staff-only room, someone else's conversation: the same errors."""
    direct = Room.objects.create(title="", kind=RoomKind.DIRECT, direct_key=f"{bob.pk}-{staff.pk}")
    RoomMember.objects.create(room=direct, user=bob)
    RoomMember.objects.create(room=direct, user=staff)
    for room_id, code in (
        (999_999, ErrorCode.ROOM_INVALID),
        (staff_room.pk, ErrorCode.ROOM_ACCESS_DENIED),
        (direct.pk, ErrorCode.ROOM_ACCESS_DENIED),
    ):
        with pytest.raises(ChatError) as ours:
            selectors.room_for_join(user=alice, room_id=room_id)
        with pytest.raises(ChatError) as theirs:
            selectors.room_for_user(user=alice, room_id=room_id)
        assert ours.value.code == theirs.value.code == code
        assert str(ours.value) == str(theirs.value)
    member = selectors.room_for_join(user=bob, room_id=direct.pk)
    assert member.members == sorted([bob.username, staff.username])
    assert member.kind == RoomKind.DIRECT


def test_a_compiled_query_refuses_samples_it_cannot_tell_apart():
    """Two arguments with one sample value cannot be told apart in the SQL: refused."""
    same = Compiled(lambda a, b: Room.objects.filter(pk=a, last_seq=b), a=3, b=3)
    with pytest.raises(ImproperlyConfigured):
        same.rows(a=1, b=2)
    unused = Compiled(lambda a, b: Room.objects.filter(pk=a), a=3, b=4)
    with pytest.raises(ImproperlyConfigured):
        unused.rows(a=1, b=2)
