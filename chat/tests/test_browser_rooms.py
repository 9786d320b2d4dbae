"""The live room list and rooms made by users, in a real browser (issue 15, items 5 and 12)."""

import pytest

from chat.tests.test_browser_ui import join, open_chat, shoot
from multichat_client import RestClient
from testkit.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob, a staff member and two rooms."""
    live = LiveServer().prepare()
    made = live.seed(
        users=["alice", "bob"], staff=["stella"], rooms=["General", "Random"], tokens=["bob"]
    )
    live.rooms, live.tokens = made.rooms, made.tokens
    live.testkit("grant", username="stella", permissions=["chat.view_room", "chat.change_room"])
    live.start()
    yield live
    live.stop()


def toggle(page, title: str):
    """The room list's button for the room called ``title``."""
    return page.locator(".room-toggle", has=page.locator(".room-name", has_text=title))


def room_id_of(page, title: str) -> int:
    """The id of the listed room called ``title``."""
    return int(toggle(page, title).get_attribute("data-room-id"))


def create_room(page, title: str) -> int:
    """Create a room with the New room dialog; returns its id once its pane has joined."""
    from playwright.sync_api import expect

    page.click("#room-new")
    dialog = page.get_by_role("dialog", name="New room")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Title").fill(title)
    dialog.get_by_role("button", name="Create room").click()
    expect(dialog).to_have_count(0)
    room_id = room_id_of(page, title)
    pane = page.locator(f".room-pane[data-room-id='{room_id}']")
    expect(pane).to_have_attribute("data-state", "joined")
    return room_id


def pane_menu(page, room_id: int, item: str) -> None:
    """Open a pane's room options and click ``item``."""
    pane = page.locator(f".room-pane[data-room-id='{room_id}']")
    pane.get_by_label("Room options").click()
    pane.get_by_role("button", name=item).click()


def test_a_room_created_by_another_user_appears_without_a_reload(browser, server):
    """bob creates a room from the dialog: it opens for him and shows up in alice's list."""
    from playwright.sync_api import expect

    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    bob.click("#room-new")
    dialog = bob.get_by_role("dialog", name="New room")
    expect(dialog.get_by_label("Title")).to_be_focused()
    dialog.get_by_role("button", name="Create room").click()  # empty: refused in the dialog
    expect(dialog.get_by_role("alert")).to_have_text("Give the room a title.")
    dialog.get_by_label("Title").fill("Book club")
    shoot(bob, "rooms-new-room-dialog.png")
    dialog.get_by_role("button", name="Create room").click()
    expect(dialog).to_have_count(0)
    expect(toggle(bob, "Book club")).to_have_attribute("aria-pressed", "true")
    expect(toggle(alice, "Book club")).to_have_count(1)
    names = alice.locator("#rooms .room-name").all_inner_texts()
    assert names == ["Book club", "General", "Random"]  # in title order
    # alice did not create it: she may not rename it; bob may.
    room_id = room_id_of(alice, "Book club")
    join(alice, room_id)
    alice_pane = alice.locator(f".room-pane[data-room-id='{room_id}']")
    alice_pane.get_by_label("Room options").click()
    expect(alice_pane.get_by_role("button", name="Rename…")).to_be_hidden()
    expect(alice_pane.get_by_role("button", name="Leave room")).to_be_visible()
    alice.context.close()
    bob.context.close()


def test_a_rename_shows_in_every_list_and_open_pane(browser, server):
    """alice renames her room from its pane: bob's list and bob's open pane follow."""
    from playwright.sync_api import expect

    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    room_id = create_room(alice, "Plants")
    expect(toggle(bob, "Plants")).to_have_count(1)
    join(bob, room_id)
    pane_menu(alice, room_id, "Rename…")
    dialog = alice.get_by_role("dialog", name="Rename room")
    expect(dialog.get_by_label("Title")).to_have_value("Plants")
    dialog.get_by_label("Title").fill("Ferns and mosses")
    dialog.get_by_role("button", name="Rename").click()
    expect(dialog).to_have_count(0)
    for page in (alice, bob):
        expect(page.locator(f".room-toggle[data-room-id='{room_id}'] .room-name")).to_have_text(
            "Ferns and mosses"
        )
        pane = page.locator(f".room-pane[data-room-id='{room_id}']")
        expect(pane.locator(".pane-title")).to_have_text("Ferns and mosses")
    expect(bob.locator(f".room-pane[data-room-id='{room_id}'] .composer-input")).to_have_attribute(
        "aria-label", "Message Ferns and mosses"
    )
    alice.context.close()
    bob.context.close()


def test_a_room_made_staff_only_in_the_admin_disappears_and_its_pane_closes(browser, server):
    """stella makes a room staff-only (and renames it) in the admin: it leaves alice's page."""
    from playwright.sync_api import expect

    room_id = server.create_room("Soon secret")
    alice = open_chat(browser, server, "alice")
    join(alice, room_id)
    stella = open_chat(browser, server, "stella")
    expect(toggle(stella, "Soon secret")).to_have_count(1)
    stella.goto(f"{server.url}admin/chat/room/{room_id}/change/")
    stella.fill("#id_title", "Council only")
    stella.check("#id_staff_only")
    stella.click("input[name=_save]")
    expect(stella.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(alice.locator(f".room-toggle[data-room-id='{room_id}']")).to_have_count(0)
    expect(alice.locator(f".room-pane[data-room-id='{room_id}']")).to_have_count(0)
    expect(alice.locator("#notices")).to_contain_text("“Soon secret” was closed")
    assert "Council only" not in alice.content()
    # staff see the new title live, on a page loaded before the change.
    staff_page = open_chat(browser, server, "stella")
    expect(toggle(staff_page, "Council only")).to_have_count(1)
    alice.context.close()
    stella.context.close()


def test_leave_a_room_on_every_device_and_join_it_again_from_browse(browser, server):
    """alice leaves Random on her laptop: it leaves her phone too; Browse rooms brings it back."""
    from playwright.sync_api import expect

    room_id = server.rooms["Random"]
    laptop = open_chat(browser, server, "alice")
    phone = open_chat(browser, server, "alice")
    join(laptop, room_id)
    join(phone, room_id)
    pane_menu(laptop, room_id, "Leave room")
    for page in (laptop, phone):
        expect(page.locator(f".room-toggle[data-room-id='{room_id}']")).to_have_count(0)
        expect(page.locator(f".room-pane[data-room-id='{room_id}']")).to_have_count(0)
    expect(phone.locator("#notices")).to_contain_text("You left “Random”.")
    # Its messages count no more: bob posts there, then in General; only General counts.
    bob = RestClient(server.url, server.tokens["bob"])
    bob.post(room_id, "unseen in Random")
    bob.post(server.rooms["General"], "news in General")
    expect(phone).to_have_title("(1) multichat")
    expect(
        phone.locator(f".room-toggle[data-room-id='{server.rooms['General']}'] .unread")
    ).to_have_text("1")
    # Gone after a reload too, until joined again.
    laptop.reload()
    expect(laptop.locator("#conn-state")).to_have_attribute("data-state", "connected")
    expect(toggle(laptop, "General")).to_have_count(1)
    expect(laptop.locator(f".room-toggle[data-room-id='{room_id}']")).to_have_count(0)

    laptop.click("#room-browse")
    dialog = laptop.get_by_role("dialog", name="Browse rooms")
    expect(dialog).to_be_visible()
    row = dialog.locator(f".browse-room[data-room-id='{room_id}']")
    expect(row).to_contain_text("Not in your list")
    expect(dialog.locator(".browse-room", has_text="General")).to_contain_text("In your list")
    shoot(laptop, "rooms-browse-dialog.png")
    row.get_by_role("button", name="Join Random").click()
    expect(dialog).to_have_count(0)
    pane = laptop.locator(f".room-pane[data-room-id='{room_id}']")
    expect(pane).to_have_attribute("data-state", "joined")
    expect(toggle(phone, "Random")).to_have_count(1)  # back on the other device, live
    laptop.context.close()
    phone.context.close()


def test_new_room_dialog_is_keyboard_usable(browser, server):
    """Escape closes the dialog and gives focus back to the New room button."""
    from playwright.sync_api import expect

    page = open_chat(browser, server, "bob")
    page.focus("#room-new")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New room")
    expect(dialog.get_by_label("Title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#room-new")).to_be_focused()
    page.context.close()
