"""``manage.py testkit``: the data that live servers and the benchmark start from; test-only."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command

from api.models import ApiToken
from api.tokens import digest
from chat.models import Message, Room
from config import settings as production_settings
from testkit import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def run_testkit(action: str, **params: object) -> object:
    """Run ``manage.py testkit ACTION`` in this process; return its JSON result."""
    out = io.StringIO()
    call_command("testkit", action, "--json", json.dumps(params), stdout=out)
    return json.loads(out.getvalue())


def test_a_batch_makes_users_rooms_and_tokens_in_order():
    """One run: a user who can log in, a staff user, rooms by id, a token that is stored."""
    results = run_testkit(
        "batch",
        calls=[
            ["user", {"username": "alice", "password": "alice-pw-1234"}],
            ["user", {"username": "stella", "password": "stella-pw-1234", "staff": True}],
            ["room", {"title": "General"}],
            ["room", {"title": "Staff lounge", "staff_only": True}],
            ["token", {"username": "alice", "name": "cli"}],
        ],
    )
    alice_id, stella_id, general, lounge, token = results
    assert User.objects.get(pk=alice_id).check_password("alice-pw-1234")
    assert User.objects.get(pk=stella_id).is_staff
    assert not User.objects.get(pk=alice_id).is_staff
    assert Room.objects.get(pk=general).title == "General"
    assert Room.objects.get(pk=lounge).staff_only
    stored = ApiToken.objects.get(name="cli")
    assert (stored.user_id, stored.digest) == (alice_id, digest(token))


def test_posts_sends_and_revocations():
    """post (room_post, as anyone) and send (message_send, as a user) store in order."""
    run_testkit("user", username="bob")
    room = run_testkit("room", title="Busy")
    run_testkit("post", room_id=room, texts=["one", "two"])
    run_testkit("send", room_id=room, texts=["three"], username="bob")
    stored = Message.objects.filter(room_id=room).order_by("seq")
    assert [(m.seq, m.text) for m in stored] == [(1, "one"), (2, "two"), (3, "three")]
    assert stored.last().author.username == "bob"
    run_testkit("token", username="bob", name="soon revoked")
    run_testkit("revoke-token", name="soon revoked")
    assert ApiToken.objects.get(name="soon revoked").revoked_at is not None


def test_benchmark_users_come_logged_in():
    """logged-in-users: one valid session per user; rooms: ids of new rooms."""
    keys = run_testkit("logged-in-users", count=3, prefix="b")
    assert len(set(keys)) == 3
    users = {Session.objects.get(session_key=k).get_decoded()["_auth_user_id"] for k in keys}
    assert users == {str(u.pk) for u in User.objects.filter(username__in=["b0", "b1", "b2"])}
    ids = run_testkit("rooms", count=2)
    assert list(Room.objects.filter(pk__in=ids).values_list("title", flat=True)) == [
        "Bench 0",
        "Bench 1",
    ]


@pytest.mark.parametrize(
    ("action", "params", "says"),
    [
        ("nope", {}, "Unknown action 'nope'"),
        ("user", {}, "missing a required argument: 'username'"),
        ("room", {"title": "x", "colour": "red"}, "unexpected keyword argument 'colour'"),
    ],
)
def test_unknown_actions_and_parameters_are_refused_by_name(action, params, says):
    """A mistake names what was wrong and makes nothing."""
    with pytest.raises(CommandError, match=says):
        run_testkit(action, **params)
    assert not Room.objects.exists()


def test_only_test_settings_install_testkit():
    """Production settings neither install the app nor know the command (known passwords)."""
    assert "testkit" in settings.INSTALLED_APPS
    assert "testkit" not in production_settings.INSTALLED_APPS
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "testkit-check-" + "k" * 50,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "testkit", "user", "--json", '{"username": "x"}'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Unknown command: 'testkit'" in done.stderr
