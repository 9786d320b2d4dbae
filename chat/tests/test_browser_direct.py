"""Direct conversations in a real browser (issue 16): the New message dialog, the list, a card."""

import pytest

from chat.tests.test_browser_ui import open_chat, say, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 740}


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob, carol and a room (bob has a display name)."""
    live = LiveServer(extra_env={"CHAT_SEND_RATE": "0"}).prepare()
    made = live.seed(users=["alice", "bob", "carol"], rooms=["General"])
    live.rooms = made.rooms
    live.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from people import services; "
        "services.display_name_set(user=User.objects.get(username='bob'), "
        "display_name='Bob Builder')",
    )
    live.start()
    yield live
    live.stop()


def test_alice_writes_to_bob_who_sees_it_live_with_a_badge_and_reads_it(browser, server):
    """alice picks bob in the New message dialog (keyboard), sends; bob's list gets the
    conversation live under Direct messages with a highlighted badge; he opens and reads it."""
    from playwright.sync_api import expect

    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    alice.click("#direct-new")
    dialog = alice.get_by_role("dialog", name="New message")
    expect(dialog.get_by_label("Find people")).to_be_focused()
    dialog.get_by_role("button", name="Open conversation").click()  # nobody: refused in place
    expect(dialog.get_by_role("alert")).to_have_text("Choose at least one person.")
    dialog.get_by_label("Find people").fill("build")  # bob's display name, not his username
    choice = dialog.get_by_role("checkbox", name="Bob Builder (@bob)")
    expect(choice).to_have_count(1)
    expect(dialog.get_by_role("checkbox")).to_have_count(1)  # carol is filtered out
    dialog.get_by_label("Find people").press("ArrowDown")
    expect(choice).to_be_focused()
    alice.keyboard.press("Space")
    expect(dialog.get_by_role("status")).to_have_text("To: Bob Builder")
    shoot(alice, "direct-messages-dialog.png")
    dialog.get_by_role("button", name="Open conversation").click()
    expect(dialog).to_have_count(0)

    entry = alice.locator("#directs .room-toggle")
    expect(entry.locator(".room-name")).to_have_text("Bob Builder")
    room_id = int(entry.get_attribute("data-room-id"))
    pane = alice.locator(f".room-pane[data-room-id='{room_id}']")
    expect(pane).to_have_attribute("data-state", "joined")
    expect(pane.locator(".pane-title")).to_have_text("Bob Builder")
    say(alice, room_id, "Hi Bob, only you can read this")

    theirs = bob.locator(f"#directs .room-toggle[data-room-id='{room_id}']")
    expect(theirs.locator(".room-name")).to_have_text("alice")
    badge = theirs.locator(".unread")
    expect(badge).to_have_text("1")
    expect(badge).to_have_class("unread has-mention")  # a conversation's post stands out
    assert bob.locator("#rooms .room-toggle", has_text="alice").count() == 0  # not a room
    shoot(bob, "direct-messages.png")
    theirs.click()
    bob_pane = bob.locator(f".room-pane[data-room-id='{room_id}']")
    expect(bob_pane.locator(".message", has_text="only you can read this")).to_have_count(1)
    expect(badge).to_be_hidden()  # read

    carol = open_chat(browser, server, "carol")
    expect(carol.locator(f".room-toggle[data-room-id='{room_id}']")).to_have_count(0)
    for page in (alice, bob, carol):
        page.context.close()


def test_a_profile_cards_message_button_opens_the_conversation(browser, server):
    """carol opens bob's card from the dialog-free path (a name in General) and presses Message."""
    from playwright.sync_api import expect

    from chat.tests.test_browser_ui import join

    bob = open_chat(browser, server, "bob")
    general = server.rooms["General"]
    join(bob, general)
    say(bob, general, "anyone around?")
    carol = open_chat(browser, server, "carol", viewport=PHONE, has_touch=True, is_mobile=True)
    carol.click(f".room-toggle[data-room-id='{general}']")
    pane = carol.locator(f".room-pane[data-room-id='{general}']")
    pane.locator(".message button.person", has_text="Bob Builder").first.click()
    card = carol.get_by_role("dialog", name="Bob Builder")
    card.get_by_role("button", name="Send Bob Builder a direct message").click()
    expect(card).to_have_count(0)
    direct = carol.locator(".room-pane .pane-title", has_text="Bob Builder")
    expect(direct).to_have_count(1)
    box = carol.locator(".room-pane:visible .composer-input")
    expect(box).to_be_visible()
    height = carol.locator("#show-rooms").bounding_box()["height"]
    assert height >= 44  # the phone's way back to the list is a real tap target
    carol.click("#show-rooms")
    expect(carol.locator("#directs .room-toggle .room-name")).to_have_text(["Bob Builder"])
    for page in (bob, carol):
        page.context.close()
