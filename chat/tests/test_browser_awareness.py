"""Awareness in the browser: unread badges, the unread divider, mentions, members, typing."""

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

# Wraps window.Notification so a test can read every notification the page raises.
CAPTURE_NOTIFICATIONS = """
window.notifications = [];
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) {
    super(title, options);
    window.notifications.push({ title, body: options && options.body });
  }
};
"""

# Counts Notification.requestPermission calls (the permission prompt).
COUNT_PERMISSION_REQUESTS = """
window.asked = 0;
const ask = Notification.requestPermission.bind(Notification);
Notification.requestPermission = (...args) => (window.asked++, ask(...args));
"""


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob and one room per test (rooms are listed with the page)."""
    live = LiveServer().prepare()
    live.rooms = live.seed(
        users=["alice", "bob"],
        rooms=["Unread", "Backlog", "Mentions", "Lounge", "Quiet", "Away", "Missed"],
    ).rooms
    live.start()
    yield live
    live.stop()


def badge(page, room_id: int):
    """A room's unread badge in the room list."""
    return page.locator(f".room-toggle[data-room-id='{room_id}'] .unread")


def test_unread_badges_appear_and_clear_on_every_device(browser, server):
    """Bob posts in a room Alice has not opened: badge and title on both her browsers.

    Reading it in one clears it in both (the read frame reaches every socket of hers).
    """
    from playwright.sync_api import expect

    room = server.rooms["Unread"]
    alice = open_chat(browser, server, "alice")
    alice_phone = open_chat(browser, server, "alice", viewport={"width": 390, "height": 844})
    bob = open_chat(browser, server, "bob")
    join(bob, room)
    for i in range(3):
        say(bob, room, f"news {i}")
    expect(messages(bob, room)).to_have_count(3)
    for page in (alice, alice_phone):
        expect(badge(page, room)).to_be_visible()
        expect(badge(page, room)).to_have_attribute("data-count", "3")
        expect(page).to_have_title("(3) multichat")
    expect(badge(alice, server.rooms["Quiet"])).to_be_hidden()

    alice.bring_to_front()
    join(alice, room)
    expect(messages(alice, room)).to_have_count(3)
    for page in (alice, alice_phone):
        expect(badge(page, room)).to_be_hidden()
        expect(badge(page, room)).to_have_attribute("data-count", "0")
        expect(page).to_have_title("multichat")
    # A fresh page load counts from the stored read position too.
    alice_phone.reload()
    expect(alice_phone.locator("#conn-state")).to_have_attribute("data-state", "connected")
    expect(badge(alice_phone, room)).to_be_hidden()
    for page in (alice, alice_phone, bob):
        page.context.close()


def test_divider_at_the_read_position_and_jump_to_first_unread(browser, server):
    """Alice read up to her post (seq 21); 100 came after: the jump pages back to the divider."""
    from playwright.sync_api import expect

    room = server.rooms["Backlog"]
    server.testkit("post", room_id=room, texts=[f"old {i}" for i in range(1, 21)], username="bob")
    server.testkit("post", room_id=room, texts=["I read up to here"], username="alice")
    server.testkit("post", room_id=room, texts=[f"new {i}" for i in range(22, 122)], username="bob")
    alice = open_chat(browser, server, "alice")
    expect(badge(alice, room)).to_have_attribute("data-count", "100")
    join(alice, room)
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    expect(messages(alice, room).first).to_have_attribute("data-seq", "72")
    divider = pane.locator(".unread-divider")
    expect(divider).to_have_count(0)  # its place is not loaded yet
    jump = pane.locator(".jump-unread")
    expect(jump).to_be_visible()
    jump.click()
    expect(divider).to_have_count(1)
    expect(divider).to_have_text("New messages")
    expect(divider).to_be_in_viewport()
    expect(divider).to_be_focused()
    after = divider.evaluate(
        "d => [d.previousElementSibling.dataset.seq, d.nextElementSibling.dataset.seq]"
    )
    assert after == ["21", "22"], after
    expect(jump).to_be_hidden()
    expect(badge(alice, room)).to_have_attribute("data-count", "100")  # not read while scrolled up

    # Scrolled to the end, it is read; the next visit has no divider.
    alice.bring_to_front()
    pane.locator(".messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(badge(alice, room)).to_be_hidden()
    alice.context.close()
    alice = open_chat(browser, server, "alice")
    expect(badge(alice, room)).to_be_hidden()
    join(alice, room)
    expect(messages(alice, room).last).to_have_attribute("data-seq", "121")
    expect(alice.locator(f".room-pane[data-room-id='{room}'] .unread-divider")).to_have_count(0)
    expect(alice.locator(f".room-pane[data-room-id='{room}'] .jump-unread")).to_be_hidden()
    alice.context.close()


def test_a_mention_notifies_highlights_and_counts_in_the_title(browser, server):
    """Bob's @alice raises a desktop notification (permission granted), marks badge and message."""
    from playwright.sync_api import expect

    room = server.rooms["Mentions"]
    undecided = open_chat(browser, server, "alice")
    undecided.context.add_init_script(COUNT_PERMISSION_REQUESTS)
    undecided.reload()
    expect(undecided.locator("#conn-state")).to_have_attribute("data-state", "connected")
    enable = undecided.locator("#notify-enable")
    expect(enable).to_be_visible()
    assert undecided.evaluate("() => window.asked") == 0  # never on load
    enable.click()
    undecided.wait_for_function("() => window.asked === 1")
    undecided.context.close()

    alice = open_chat(browser, server, "alice", permissions=["notifications"])
    alice.context.add_init_script(CAPTURE_NOTIFICATIONS)
    alice.reload()
    expect(alice.locator("#conn-state")).to_have_attribute("data-state", "connected")
    expect(alice.locator("#notify-enable")).to_be_hidden()
    bob = open_chat(browser, server, "bob")
    join(bob, server.rooms["Quiet"])
    say(bob, server.rooms["Quiet"], "anyone here?")
    join(bob, room)
    say(bob, room, "@alice can you look at this?")
    say(bob, room, "thanks")
    alice.wait_for_function("() => window.notifications.length === 1")
    note = alice.evaluate("() => window.notifications[0]")
    assert note == {
        "title": "bob mentioned you in Mentions",
        "body": "@alice can you look at this?",
    }
    expect(badge(alice, room)).to_have_attribute("data-count", "2")
    expect(badge(alice, room)).to_have_attribute("data-mentions", "1")
    expect(badge(alice, room)).to_have_class("unread has-mention")
    expect(badge(alice, server.rooms["Quiet"])).to_have_attribute("data-count", "1")
    expect(badge(alice, server.rooms["Quiet"])).to_have_attribute("data-mentions", "0")
    expect(alice).to_have_title("(3) multichat")
    shoot(alice, "unread-badges.png")

    alice.bring_to_front()
    join(alice, room)
    mentioned = messages(alice, room).filter(has_text="@alice can you")
    expect(mentioned).to_have_class("message msg-normal mention")
    expect(messages(alice, room).filter(has_text="thanks")).not_to_have_class("mention")
    expect(alice).to_have_title("(1) multichat")
    expect(badge(alice, room)).to_have_attribute("data-mentions", "0")
    # Looking at the room: a new mention highlights the message but raises no notification.
    say(bob, room, "and @alice again")
    expect(messages(alice, room).last).to_have_class("message msg-normal mention")
    assert alice.evaluate("() => window.notifications.length") == 1
    alice.context.close()
    bob.context.close()


def test_member_list_and_typing_indicator(browser, server):
    """Alice sees Bob online in the room, his typing for a while, and his leaving."""
    from playwright.sync_api import expect

    room = server.rooms["Lounge"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    member = pane.locator(".member[data-user='bob']")
    expect(member).to_have_attribute("data-state", "online")
    expect(pane.locator(".member[data-user='alice']")).to_have_attribute("data-state", "online")
    expect(pane.locator(".members-summary")).to_have_text("Members (2)")

    typing = pane.locator(".typing")
    bob_box = bob.locator(f".room-pane[data-room-id='{room}'] .composer-input")
    bob_box.type("hello al")
    expect(typing).to_have_text("bob is typing…")
    shoot(alice, "members-typing.png")
    bob_box.press("Enter")
    expect(messages(alice, room).last.locator(".body")).to_have_text("hello al")
    expect(typing).to_have_text("")  # his message arrived

    bob_box.type("one more")
    expect(typing).to_have_text("bob is typing…")
    expect(typing).to_have_text("", timeout=10000)  # expires_in ran out
    bob_typing = bob.locator(f".room-pane[data-room-id='{room}'] .typing")
    expect(bob_typing).to_have_text("")  # not shown to the typist himself

    bob.click(f".room-toggle[data-room-id='{room}']")  # bob leaves the room
    expect(member).to_have_count(0)
    expect(pane.locator(".members-summary")).to_have_text("Members (1)")
    alice.context.close()
    bob.context.close()


def test_idle_after_five_minutes_without_input_and_active_again(browser, server):
    """Bob's page says idle after 5 minutes without input (a fake clock), active on his next key."""
    from playwright.sync_api import expect

    room = server.rooms["Away"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    bob.clock.install()
    bob.reload()
    expect(bob.locator("#conn-state")).to_have_attribute("data-state", "connected")
    join(alice, room)
    join(bob, room)
    member = alice.locator(f".room-pane[data-room-id='{room}'] .member[data-user='bob']")
    expect(member).to_have_attribute("data-state", "online")
    bob.clock.fast_forward("05:30")  # the 30 s idle check runs on the fake clock too
    bob.clock.run_for(1000)
    expect(member).to_have_attribute("data-state", "idle")
    expect(member.locator(".member-state")).to_have_text("idle")
    bob.keyboard.press("Shift")
    expect(member).to_have_attribute("data-state", "online")
    alice.context.close()
    bob.context.close()


def test_counts_missed_while_disconnected_show_after_the_reconnect(browser, server):
    """Posts stored while Alice's socket was down show in her badge once it is back."""
    from playwright.sync_api import expect

    room = server.rooms["Missed"]
    alice = open_chat(browser, server, "alice")
    expect(badge(alice, room)).to_be_hidden()
    server.stop()
    expect(alice.locator("#conn-state")).not_to_have_attribute("data-state", "connected")
    server.testkit("post", room_id=room, texts=["while you were away", "and more"], username="bob")
    server.start()
    expect(alice.locator("#conn-state")).to_have_attribute("data-state", "connected", timeout=20000)
    expect(badge(alice, room)).to_have_attribute("data-count", "2")
    alice.context.close()
