"""Profiles: display names through /api/me, profile cards at /api/users, default avatars."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from people import avatars, services
from people.models import Profile
from testkit.factories import bearer

pytestmark = pytest.mark.django_db(transaction=True)


def patch_me(client: Client, body) -> object:
    return client.patch("/api/me", json.dumps(body), content_type="application/json")


def _luminance(color: str) -> float:
    """WCAG relative luminance of #rrggbb."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_avatar_colour_takes_white_text_at_wcag_aa():
    """White initials on each palette colour have a contrast of at least 4.5:1."""
    for color in avatars.PALETTE:
        ratio = 1.05 / (_luminance(color) + 0.05)
        assert ratio >= 4.5, (color, round(ratio, 2))


def test_avatar_colour_is_stable_and_spread_and_initials_come_from_the_name():
    """The same name always gets the same colour; names spread over the palette."""
    assert avatars.color_for("alice") == avatars.color_for("alice")
    assert len({avatars.color_for(f"user{i}") for i in range(200)}) == len(avatars.PALETTE)
    assert avatars.initials("alice") == "A"
    assert avatars.initials("Ada Lovelace King") == "AL"
    assert avatars.initials("jean_luc") == "JL"
    assert avatars.initials("émile zola") == "ÉZ"
    assert avatars.initials("") == "?"


def test_patch_me_sets_the_display_name_and_every_lookup_shows_it(alice, bob):
    """PATCH /api/me changes the display name (white space tidied); /api/users shows it to Bob."""
    client = bearer(alice)
    response = patch_me(client, {"display_name": "  Alice   Liddell "})
    assert response.status_code == 200
    assert response.json()["display_name"] == "Alice Liddell"
    assert response.json()["initials"] == "AL"
    assert client.get("/api/me").json()["display_name"] == "Alice Liddell"
    card = bearer(bob).get("/api/users/alice").json()
    assert card["display_name"] == "Alice Liddell"
    assert card["username"] == "alice" and card["color"] == avatars.color_for("alice")
    assert patch_me(client, {"display_name": ""}).json()["display_name"] == "alice"
    assert Profile.objects.get(user=alice).display_name == ""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"display_name": "x" * 51}, 422),
        ({"display_name": "bell\u0007"}, 422),
        ({"display_name": "line\nbreak"}, 422),
        ({"display_name": 5}, 422),
        ({}, 422),
    ],
)
def test_patch_me_refuses_bad_display_names(alice, body, status):
    """Too long, control characters, not a string, missing: refused in the API's error shape."""
    response = patch_me(bearer(alice), body)
    assert response.status_code == status
    assert response.json()["error"] == "BAD_REQUEST"
    assert not Profile.objects.filter(user=alice, display_name__gt="").exists()


def test_the_service_refuses_control_characters_whoever_calls_it(alice):
    """Not only the REST schema: the service itself refuses control characters."""
    from chat.errors import ChatError

    with pytest.raises(ChatError, match="control characters"):
        services.display_name_set(user=alice, display_name="tab\there")


def test_patch_me_from_the_browser_needs_the_csrf_token(alice):
    """With the session cookie, a write without X-CSRFToken is refused (as every API write)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert patch_me(client, {"display_name": "Al"}).status_code == 403
    client.get("/")  # sets the CSRF cookie
    response = client.patch(
        "/api/me",
        json.dumps({"display_name": "Al"}),
        content_type="application/json",
        headers={"X-CSRFToken": client.cookies["csrftoken"].value},
    )
    assert response.status_code == 200 and response.json()["display_name"] == "Al"


def test_a_profile_card_says_who_someone_is(alice, staff):
    """GET /api/users/{username}: display name, staff, joined date and avatar; unknown is 404."""
    services.display_name_set(user=staff, display_name="Stella Staff")
    card = bearer(alice).get("/api/users/stella").json()
    assert card == {
        "username": "stella",
        "display_name": "Stella Staff",
        "is_staff": True,
        "joined": card["joined"],
        "color": avatars.color_for("stella"),
        "initials": "SS",
    }
    assert card["joined"].startswith(staff.date_joined.date().isoformat())
    missing = bearer(alice).get("/api/users/nobody")
    assert missing.status_code == 404
    assert missing.json()["error"] == "USER_INVALID"
    assert Client().get("/api/users/stella").status_code == 401


def test_the_batch_lookup_returns_the_known_users_by_username(alice, bob, staff):
    """GET /api/users?username=..: the cards of the names that exist; at most 100 names."""
    client = bearer(alice)
    response = client.get("/api/users?username=stella&username=bob&username=ghost")
    assert response.status_code == 200
    assert [u["username"] for u in response.json()["users"]] == ["bob", "stella"]
    many = "&".join(f"username=u{i}" for i in range(101))
    too_many = client.get(f"/api/users?{many}")
    assert too_many.status_code == 400 and too_many.json()["error"] == "BAD_REQUEST"


def test_the_people_list_filters_active_accounts_by_name(alice, bob, staff, make_user):
    """GET /api/users without names: active people by username; ``q`` matches name or username."""
    services.display_name_set(user=bob, display_name="Robert Bobson")
    gone = make_user("gone")
    gone.is_active = False
    gone.save()
    client = bearer(alice)
    everyone = client.get("/api/users").json()["users"]
    assert [u["username"] for u in everyone] == ["alice", "bob", "stella"]
    found = client.get("/api/users?q=robert").json()["users"]
    assert [(u["username"], u["display_name"]) for u in found] == [("bob", "Robert Bobson")]
    assert client.get("/api/users?q=STEL").json()["users"][0]["username"] == "stella"
    assert client.get("/api/users?q=gone").json()["users"] == []


def test_the_chat_page_carries_the_users_own_card(alice):
    """The page's config has the user's display name and avatar, so they show before any lookup."""
    services.display_name_set(user=alice, display_name="Alice L")
    client = Client()
    client.force_login(alice)
    page = client.get("/").content.decode()
    config = json.loads(page.split('id="chat-config" type="application/json">')[1].split("<")[0])
    assert config["profile"] == {
        "username": "alice",
        "display_name": "Alice L",
        "color": avatars.color_for("alice"),
        "initials": "AL",
    }


def test_lookups_of_names_no_account_can_have_find_nothing(alice):
    """A name with NUL or over 150 characters is not looked up (PostgreSQL refuses NUL)."""
    client = bearer(alice)
    assert client.get("/api/users?username=a%00b&username=" + "x" * 200).json() == {"users": []}
    assert client.get("/api/users/a%00b").status_code == 404
