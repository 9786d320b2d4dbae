"""Access that cannot be outlived: sockets re-read their user, session, token and rooms.

A live change reaches a socket as a notice through the channel layer; these
tests make changes that send no notice at all (queryset updates bypass the
signals and services), as a change made while Redis is down does, and check
that the socket loses what it may no longer have anyway.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from api.auth import BearerTokenMiddleware
from api.models import ApiToken
from api.services import token_create
from chat.auth import SessionAuthMiddleware
from chat.middleware import OriginCheckMiddleware
from chat.models import Room
from chat.routing import websocket_urlpatterns
from testkit.factories import session_cookie
from testkit.live import LiveServer, join, next_frame, open_ws, wait_for_health
from testkit.servers import start_redis
from testkit.sockets import Communicator, Socket

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


@pytest.fixture
def recheck_often(settings):
    """Re-check every open socket twice a second."""
    settings.CHAT_ACCESS_RECHECK_SECONDS = 0.5


def is_error(code: str):
    return lambda frame: frame.get("error") == code


async def closed_with(socket: Socket, code: int, timeout: float = 5) -> bool:
    """True once the server closed ``socket`` with ``code``."""
    while True:
        output = await socket.comm.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code") == code


async def test_a_demotion_without_a_notice_takes_the_socket_out_of_staff_rooms(
    recheck_often, connect, staff, staff_room, room
):
    """A demoted user loses staff-only rooms within a re-check, though no notice came."""
    sock = await connect(staff)
    await sock.join(staff_room.pk)
    await sock.join(room.pk)
    await User.objects.filter(pk=staff.pk).aupdate(is_staff=False)
    error = await sock.recv_until(lambda f: "error" in f, timeout=5)
    assert (error["error"], error["room"]) == ("ROOM_ACCESS_DENIED", staff_room.pk)
    await sock.send({"command": "history", "room": staff_room.pk, "ref": "h"})
    assert (await sock.recv_until(lambda f: "error" in f))["error"] == "ROOM_ACCESS_DENIED"
    await sock.send({"command": "send", "room": room.pk, "message": "still here", "ref": 1})
    assert "sent" in await sock.recv_until(lambda f: "sent" in f)  # the open room stays


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"is_active": False}, id="deactivated"),
        pytest.param({"password": "changed-elsewhere"}, id="password-changed"),
    ],
)
async def test_a_user_change_without_a_notice_closes_the_socket(
    recheck_often, connect, alice, room, change
):
    """A deactivated user, or one whose password changed, is told to log in and closed."""
    sock = await connect(alice)
    await sock.join(room.pk)
    await User.objects.filter(pk=alice.pk).aupdate(**change)
    assert (await sock.recv_until(lambda f: "error" in f, 5))["error"] == "USER_HAS_TO_LOGIN"
    assert await closed_with(sock, 4401)


@pytest.mark.parametrize("how", ["deleted", "expired"])
async def test_a_session_ended_on_the_server_closes_its_sockets(
    recheck_often, connect, alice, room, how
):
    """A session deleted or expired on the server (no logout notice) closes its socket."""
    sock = await connect(alice)
    await sock.join(room.pk)
    sessions = Session.objects.all()  # the test made exactly one: alice's
    if how == "deleted":
        await sessions.adelete()
    else:
        await sessions.aupdate(expire_date=timezone.now() - timezone.timedelta(seconds=1))
    error = await sock.recv_until(lambda f: "error" in f, 5)
    assert error["error"] == "USER_HAS_TO_LOGIN"
    assert "session ended" in error["detail"]
    assert await closed_with(sock, 4401)


async def test_a_token_revoked_without_a_notice_closes_its_sockets(
    recheck_often, connect, alice, room
):
    """A socket opened with a bearer token closes when the token is revoked, notice or not."""
    _, plaintext = await database_sync_to_async(token_create)(user=alice, name="bot")
    sock = await connect(None, headers=[(b"authorization", f"Bearer {plaintext}".encode())])
    assert "join" in await sock.join(room.pk)
    await ApiToken.objects.aupdate(revoked_at=timezone.now())
    error = await sock.recv_until(lambda f: "error" in f, 5)
    assert (error["error"], error["detail"]) == ("USER_HAS_TO_LOGIN", "The token was revoked.")
    assert await closed_with(sock, 4401)


async def test_room_changes_without_a_notice_take_members_out(
    recheck_often, connect, alice, room, transactional_db
):
    """A room made staff-only, or deleted, without a notice: its non-staff members are out."""
    other = await Room.objects.acreate(title="Other")
    sock = await connect(alice)
    await sock.join(room.pk)
    await sock.join(other.pk)
    await Room.objects.filter(pk=room.pk).aupdate(staff_only=True)
    await Room.objects.filter(pk=other.pk).adelete()
    errors = {}
    while len(errors) < 2:
        error = await sock.recv_until(lambda f: "error" in f, 5)
        errors[error["room"]] = error["error"]
    assert errors == {room.pk: "ROOM_ACCESS_DENIED", other.pk: "ROOM_INVALID"}


async def test_sockets_that_keep_their_access_are_left_alone(recheck_often, connect, staff, room):
    """Re-checks that find nothing changed send nothing and change nothing."""
    sock = await connect(staff)
    await sock.join(room.pk)
    assert await sock.silent(timeout=1.6)  # three re-checks
    await sock.send({"command": "send", "room": room.pk, "message": "hi", "ref": 1})
    assert "sent" in await sock.recv_until(lambda f: "sent" in f)


# --- the handshake's window ------------------------------------------------


class ChangeAfterHandshakeRead:
    """ASGI middleware: after the handshake read the user, change it (the window of item 2)."""

    def __init__(self, app, change):
        self.app = app
        self.change = change

    async def __call__(self, scope, receive, send):
        """Commit ``change`` (through the ORM, signals and all), then go on with the stale user."""
        await database_sync_to_async(self.change)(scope["user"].pk)
        return await self.app(scope, receive, send)


async def open_through_window(user, change) -> Socket:
    """A socket whose user is changed between the handshake's read and the subscription."""
    inner = BearerTokenMiddleware(URLRouter(websocket_urlpatterns))
    app = OriginCheckMiddleware(SessionAuthMiddleware(ChangeAfterHandshakeRead(inner, change)))
    headers = [
        (b"host", b"localhost"),
        (b"origin", b"http://localhost"),
        (b"cookie", await database_sync_to_async(session_cookie)(user)),
    ]
    comm = Communicator(app, "/chat/stream/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return Socket(comm)


def _deactivate(user_id: int) -> None:
    user = User.objects.get(pk=user_id)
    user.is_active = False
    user.save()


def _demote(user_id: int) -> None:
    user = User.objects.get(pk=user_id)
    user.is_staff = False
    user.save()


async def test_a_deactivation_between_handshake_and_subscription_is_not_missed(alice):
    """The user deactivated after the handshake read them: the new socket is refused."""
    sock = await open_through_window(alice, _deactivate)
    try:
        assert (await sock.raw())["error"] == "USER_HAS_TO_LOGIN"
        assert await closed_with(sock, 4401)
    finally:
        await sock.close()


async def test_a_demotion_between_handshake_and_subscription_is_not_missed(staff, staff_room):
    """The user demoted after the handshake read them cannot join a staff-only room."""
    sock = await open_through_window(staff, _demote)
    try:
        assert (await sock.join(staff_room.pk))["error"] == "ROOM_ACCESS_DENIED"
    finally:
        await sock.close()


# --- a real Redis outage, two real sockets -----------------------------------


@pytest.mark.redis
async def test_a_demotion_made_while_redis_is_down_applies_when_it_returns(database_url):
    """Demoted while Redis is down (the notice is lost): out of the staff room when it returns."""
    redis = start_redis()
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    # Re-checks an hour apart: only the layer's recovery can trigger the one that matters.
    env = {"CHAT_ACCESS_RECHECK_SECONDS": "3600"}
    live = LiveServer(database_url=database_url, redis_url=redis.url, extra_env=env).prepare()
    lounge = live.seed(staff=["boss"], staff_rooms=["Lounge"]).rooms["Lounge"]
    live.start()
    try:
        ws = await open_ws(live, "boss")
        assert "join" in await join(ws, lounge)
        redis.stop()
        await wait_for_health(live, 503)
        live.execute_sql("UPDATE auth_user SET is_staff = %s WHERE username = %s", (False, "boss"))
        redis = start_redis(port)
        error = await next_frame(ws, lambda f: "error" in f, timeout=30)
        assert (error["error"], error["room"]) == ("ROOM_ACCESS_DENIED", lounge)
        await ws.send(json.dumps({"command": "history", "room": lounge, "ref": "h"}))
        assert (await next_frame(ws, lambda f: f.get("ref") == "h"))[
            "error"
        ] == "ROOM_ACCESS_DENIED"
        await ws.close()
    finally:
        live.stop()
        redis.stop()
