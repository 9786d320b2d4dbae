"""People in a real browser: sign-up through an invitation, avatars and names, profile cards."""

import re

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say, shoot
from people import avatars
from testkit.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob and a room."""
    live = LiveServer().prepare()
    live.rooms = live.seed(users=["alice", "bob"], rooms=["General"]).rooms
    live.start()
    yield live
    live.stop()


def pane(page, room_id: int):
    return page.locator(f".room-pane[data-room-id='{room_id}']")


def rgb(color: str) -> str:
    """#rrggbb as the browser reports a computed colour."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_sign_up_through_an_invitation_link_and_post_a_message(browser, server):
    """A link from ``manage.py invite`` opens the sign-up page; the new person lands in the chat."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    url = server.manage("invite", "--uses", "1", "--url", server.url).strip()
    assert url.startswith(server.url + "signup/")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_role("heading", name="multichat")).to_be_visible()
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password", exact=True).fill("a-long-and-unusual-pass-42")
    page.get_by_label("Password again").fill("a-long-and-unusual-pass-42")
    shoot(page, "signup.png")
    page.get_by_label("Password again").fill("not the same")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".form-error")).to_contain_text("The two passwords differ")
    page.get_by_label("Password", exact=True).fill("a-long-and-unusual-pass-42")
    page.get_by_label("Password again").fill("a-long-and-unusual-pass-42")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    expect(page.locator("#me-button")).to_have_text("newcomer")

    alice = open_chat(browser, server, "alice")
    join(alice, room)
    join(page, room)
    say(page, room, "Hello, I just signed up!")
    seen = messages(alice, room).last
    expect(seen.locator(".body")).to_have_text("Hello, I just signed up!")
    expect(seen).to_have_attribute("data-user", "newcomer")

    late = context.browser.new_context().new_page()
    late.goto(url)
    expect(late.locator(".signup-refused")).to_contain_text("This invitation was used up")
    late.context.close()
    alice.context.close()
    context.close()


def test_avatar_and_display_name_show_beside_messages_and_in_the_member_list(browser, server):
    """Bob names himself on his card; Alice sees "Bobby Tables" and a BT avatar in his colour."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    bob = open_chat(browser, server, "bob")
    bob.click("#me-button")
    card = bob.get_by_role("dialog")
    expect(card).to_be_visible()
    card.get_by_label("Display name").fill("Bobby Tables")
    card.get_by_role("button", name="Save").click()
    expect(card.locator(".profile-status")).to_have_text("Saved.")
    expect(bob.locator("#me-button")).to_have_text("Bobby Tables")  # repainted on his own page
    bob.keyboard.press("Escape")
    expect(card).to_be_hidden()

    alice = open_chat(browser, server, "alice")
    join(alice, room)
    join(bob, room)
    say(bob, room, "Tables here.")
    last = messages(alice, room).last
    expect(last.locator(".body")).to_have_text("Tables here.")
    expect(last.locator(".author")).to_have_text("Bobby Tables")
    face = last.locator(".avatar")
    expect(face).to_have_text("BT")
    expect(face).to_have_css("background-color", rgb(avatars.color_for("bob")))
    expect(face).to_have_css("color", "rgb(255, 255, 255)")
    member = pane(alice, room).locator(".member[data-user='bob']")
    expect(member.locator(".member-name")).to_have_text("Bobby Tables")
    expect(member.locator(".avatar")).to_have_text("BT")
    alice.context.close()
    bob.context.close()


def test_the_profile_card_opens_and_closes_with_the_keyboard(browser, server):
    """Tab to a name, Enter opens the card (focus inside), Escape closes it, focus goes back."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    bob = open_chat(browser, server, "bob")
    alice = open_chat(browser, server, "alice")
    join(bob, room)
    join(alice, room)
    name = pane(alice, room).locator(".member[data-user='bob'] .member-name")
    expect(name).to_be_visible()
    name.focus()
    alice.keyboard.press("Enter")
    card = alice.get_by_role("dialog")
    expect(card).to_be_visible()
    expect(card.locator(".profile-username")).to_have_text("@bob")
    expect(card.locator(".profile-joined")).to_have_text(re.compile(r"^Joined on .+\d{4}\.$"))
    expect(card.locator(":focus")).to_have_count(1)  # focus moved into the card
    expect(card.get_by_label("Display name")).to_have_count(0)  # only your own card edits
    shoot(alice, "profile-card.png")
    alice.keyboard.press("Escape")
    expect(card).to_be_hidden()
    assert alice.evaluate("() => document.activeElement.dataset.person") == "bob"
    assert alice.evaluate("() => document.activeElement.classList.contains('member-name')")
    alice.context.close()
    bob.context.close()


def test_a_name_typed_while_the_card_loads_is_kept_and_saved(browser, server):
    """Your card's details arriving after you began typing do not wipe what you typed.

    The card opens at once from the page's own data and fills in the rest
    when /api/users/<you> answers; that answer is held back here until the
    name is typed, as a slow server would. This once lost the typed name
    twice over: the arriving details repainted the open card itself as an
    avatar (it carried data-person), and the card was rebuilt with an empty
    field. (A full run caught it: "Saved." with the name left unchanged.)
    """
    from playwright.sync_api import expect

    page = open_chat(browser, server, "alice")
    held = []
    page.route("**/api/users/alice", lambda route: held.append(route))  # answered below
    page.click("#me-button")
    card = page.get_by_role("dialog")
    expect(card).to_be_visible()
    for _ in range(100):  # until the card's lookup reaches the route (Playwright calls pump it)
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1, "the card asked for its details"
    expect(card.locator(".profile-joined")).to_have_text("Loading…")
    card.get_by_label("Display name").fill("Alice Liddell")
    held[0].continue_()
    expect(card.locator(".profile-joined")).to_have_text(re.compile(r"^Joined on .+\d{4}\.$"))
    expect(card.get_by_label("Display name")).to_have_value("Alice Liddell")
    card.get_by_role("button", name="Save").click()
    expect(card.locator(".profile-status")).to_have_text("Saved.")
    expect(page.locator("#me-button")).to_have_text("Alice Liddell")
    page.context.close()
