"""API tokens: the pages and the admin that make them, how they are stored, and the socket."""

import io
import re

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from api import services as token_services
from api import tokens
from api.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = re.compile(r"mct_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def logged_in(user) -> Client:
    """A test client with ``user``'s session, CSRF checks on."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def post_form(client: Client, path: str, data: dict | None = None):
    """POST a form the way a browser does: with the CSRF cookie's token."""
    client.get("/tokens/")
    data = {**(data or {}), "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    return client.post(path, data)


def database_dump() -> str:
    """Every row of every table, as dumpdata writes it."""
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


def bearer_header(token: str) -> list[tuple[bytes, bytes]]:
    """The handshake header of a bot's socket."""
    return [(b"authorization", f"Bearer {token}".encode())]


def test_token_is_shown_once_and_the_database_keeps_only_its_hash(alice):
    """The create page shows the token; no later page and no table row contains it."""
    client = logged_in(alice)
    response = post_form(client, "/tokens/new/", {"name": "deploy bot"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = TOKEN.findall(response.content.decode())
    assert len(set(shown)) == 1
    plaintext = shown[0]
    secret = plaintext.split("_", 2)[2]  # the secret may itself contain "_"
    listing = client.get("/tokens/").content.decode()
    assert "deploy bot" in listing
    assert plaintext[:12] in listing  # the non-secret prefix identifies it
    assert secret not in listing
    dump = database_dump()
    assert secret not in dump
    token = ApiToken.objects.get()
    assert len(token.digest) == 64 and secret not in token.digest
    assert Client(headers={"Authorization": f"Bearer {plaintext}"}).get("/api/me").json()[
        "username"
    ] == ("alice")


def test_the_chat_page_links_to_the_token_page(alice):
    """The chat page's top bar leads to /tokens/."""
    assert 'href="/tokens/"' in logged_in(alice).get("/").content.decode()


def test_token_pages_need_a_login():
    """Anonymous visitors are sent to the login page."""
    response = Client().get("/tokens/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/tokens/")


def test_creating_a_token_needs_the_csrf_token(alice):
    """A cross-site form cannot make a token for the visitor."""
    response = logged_in(alice).post("/tokens/new/", {"name": "forged"})
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_a_token_needs_a_name(alice):
    """An empty name is refused with the form's error and creates nothing."""
    response = post_form(logged_in(alice), "/tokens/new/", {"name": ""})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_from_the_page_stops_the_token(alice):
    """The revoke button revokes it: the API refuses it from then on."""
    token, plaintext = token_services.token_create(user=alice, name="old bot")
    client = logged_in(alice)
    response = post_form(client, f"/tokens/{token.pk}/revoke/")
    assert (response.status_code, response["Location"]) == (302, "/tokens/")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "revoked" in client.get("/tokens/").content.decode()
    api = Client(headers={"Authorization": f"Bearer {plaintext}"})
    assert api.get("/api/me").status_code == 401


def test_nobody_can_revoke_another_users_token(alice, bob):
    """Revoking someone else's token id is a 404, and the token keeps working."""
    token, _ = token_services.token_create(user=alice, name="alice's")
    response = post_form(logged_in(bob), f"/tokens/{token.pk}/revoke/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert "alice&#x27;s" not in logged_in(bob).get("/tokens/").content.decode()


def test_admin_creates_a_token_for_a_user_and_shows_it_once(django_user_model, bob):
    """Staff with admin rights create a token for a user; only its hash is kept."""
    admin = django_user_model.objects.create_superuser("root", password="pw-for-tests")
    client = Client()
    client.force_login(admin)
    response = client.post("/admin/api/apitoken/add/", {"user": bob.pk, "name": "ci"})
    assert response.status_code == 200
    plaintext = TOKEN.search(response.content.decode()).group(0)
    token = ApiToken.objects.get()
    assert (token.user, token.name) == (bob, "ci")
    assert plaintext.split("_", 2)[2] not in database_dump()
    page = client.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    assert plaintext not in page
    response = client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_last_used_is_recorded(alice):
    """A token's use is recorded, so users can spot unused ones."""
    token, plaintext = token_services.token_create(user=alice, name="bot")
    assert token.last_used is None
    Client(headers={"Authorization": f"Bearer {plaintext}"}).get("/api/me")
    token.refresh_from_db()
    assert token.last_used is not None


def test_a_deactivated_users_token_is_refused(alice):
    """Disabling the account disables its tokens."""
    _, plaintext = token_services.token_create(user=alice, name="bot")
    alice.is_active = False
    alice.save()
    assert Client(headers={"Authorization": f"Bearer {plaintext}"}).get("/api/me").status_code == (
        401
    )


async def test_bearer_socket_without_origin_or_cookie_can_join_and_send(connect, alice, room):
    """A bot's socket (token, no Origin, no cookie) joins and posts as the token's user."""
    _, plaintext = await database_sync_to_async(token_services.token_create)(user=alice, name="bot")
    sock = await connect(None, origin=None, headers=bearer_header(plaintext))
    assert (await sock.join(room.pk))["join"] == room.pk
    await sock.send({"command": "send", "room": room.pk, "message": "beep"})
    frame = await sock.recv()
    assert (frame["username"], frame["message"], frame["seq"]) == ("alice", "beep", 1)


@pytest.mark.parametrize("revoked", [True, False], ids=["revoked", "made-up"])
async def test_socket_with_a_revoked_or_unknown_token_is_closed_with_4401(connect, alice, revoked):
    """A token that is revoked or never existed gets USER_HAS_TO_LOGIN and close code 4401."""
    token, plaintext = await database_sync_to_async(token_services.token_create)(
        user=alice, name="bot"
    )
    if revoked:
        await database_sync_to_async(token_services.token_revoke)(token=token)
    else:
        plaintext = plaintext[:-4] + "AAAA"
    sock = await connect(None, origin=None, headers=bearer_header(plaintext))
    assert (await sock.recv())["error"] == "USER_HAS_TO_LOGIN"
    assert await sock.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_a_bad_bearer_token_wins_over_a_valid_session_cookie(connect, alice):
    """With both, the bearer header decides: a bad token is refused despite the cookie."""
    sock = await connect(alice, headers=bearer_header("mct_00000000_made-up"))
    assert (await sock.recv())["error"] == "USER_HAS_TO_LOGIN"
    assert await sock.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_revoking_a_token_closes_its_open_sockets(connect, alice, room):
    """Revocation takes effect at once: the token's open socket is told and closed with 4401."""
    token, plaintext = await database_sync_to_async(token_services.token_create)(
        user=alice, name="bot"
    )
    bot = await connect(None, origin=None, headers=bearer_header(plaintext))
    browser = await connect(alice)
    for sock in (bot, browser):
        await sock.join(room.pk)
    await database_sync_to_async(token_services.token_revoke)(token=token)
    assert (await bot.recv())["error"] == "USER_HAS_TO_LOGIN"
    assert await bot.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}
    await browser.send({"command": "send", "room": room.pk, "message": "still here"})
    assert (await browser.recv())["message"] == "still here"  # the session socket stays


class RolledBack(Exception):
    """Raised to roll a transaction back."""


def revoke_in_a_transaction(token: ApiToken, *, roll_back: bool) -> None:
    """Revoke ``token`` inside a transaction that commits or rolls back."""
    try:
        with transaction.atomic():
            token_services.token_revoke(token=token)
            if roll_back:
                raise RolledBack
    except RolledBack:
        pass


async def test_a_rolled_back_revocation_closes_no_socket(alice, user_events):
    """The revocation notice goes out after the commit: a rolled-back one publishes nothing."""
    create = database_sync_to_async(token_services.token_create)
    kept, _ = await create(user=alice, name="kept")
    revoked, _ = await create(user=alice, name="revoked")
    await database_sync_to_async(revoke_in_a_transaction)(kept, roll_back=True)
    assert (await ApiToken.objects.aget(pk=kept.pk)).revoked_at is None  # rolled back
    await database_sync_to_async(revoke_in_a_transaction)(revoked, roll_back=False)
    event = await user_events()  # the first one published: the committed revocation's
    assert event["session_key"] == tokens.socket_session_key(revoked.pk)
