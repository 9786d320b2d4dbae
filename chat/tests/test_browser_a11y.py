"""WCAG 2.2 AA in a real browser: axe-core on every page, and what axe cannot see by itself."""

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

LONG = "A room with a title long enough to need an ellipsis in every place it is shown"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob, a staff member, rooms with unread messages, a staff room."""
    live = LiveServer().prepare()
    live.rooms = live.seed(
        users=["alice", "bob"],
        staff=["stella"],
        rooms=["General", LONG, "Unread", "History"],
        staff_rooms=["Staff lounge"],
        tokens=["stella"],
    ).rooms
    live.testkit("post", room_id=live.rooms["Unread"], texts=["one", "@stella two"], username="bob")
    history = [f"old {i}" for i in range(1, 121)]
    live.testkit("post", room_id=live.rooms["History"], texts=history, username="bob")
    live.start()
    yield live
    live.stop()


def violations(page) -> list[str]:
    """axe-core's WCAG 2.0-2.2 A and AA violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violations_on_the_login_chat_and_token_pages(browser, server, scheme):
    """Login, chat (open rooms, every badge and message type; desktop, tabs, phone), tokens."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    stella = context.new_page()
    stella.goto(server.url + "login/")
    assert violations(stella) == []
    stella.fill("#id_username", "stella")
    stella.fill("#id_password", "not her password")
    stella.click("button[type=submit]")
    expect(stella.locator(".form-error")).to_be_visible()
    assert violations(stella) == []
    stella.fill("#id_username", "stella")
    stella.fill("#id_password", "stella-pw-1234")
    stella.click("button[type=submit]")
    expect(stella.locator("#conn-state")).to_have_attribute("data-state", "connected")
    general, long_room = server.rooms["General"], server.rooms[LONG]
    join(stella, general)
    join(stella, long_room)
    for kind in ("Message", "Warning", "Alert", "Muted"):
        stella.locator(f".room-pane[data-room-id='{long_room}'] .composer-type").select_option(
            label=kind
        )
        say(stella, long_room, f"A {kind.lower()}")
    expect(messages(stella, long_room).last.locator(".body")).to_have_text("A muted")
    staff_badge = stella.locator(".room-list .badge-staff")
    expect(staff_badge).to_be_visible()
    unread = stella.locator(f".room-toggle[data-room-id='{server.rooms['Unread']}'] .unread")
    expect(unread).to_have_class("unread has-mention")
    assert violations(stella) == []

    stella.click("#view-toggle")
    expect(stella.locator("#room-tabs")).to_be_visible()
    assert violations(stella) == []

    stella.set_viewport_size(PHONE)
    expect(stella.locator("#show-rooms")).to_be_visible()
    assert violations(stella) == []
    stella.click("#show-rooms")
    assert violations(stella) == []

    stella.set_viewport_size({"width": 1280, "height": 800})
    stella.goto(server.url + "tokens/")
    stella.fill("#id_name", "a11y check")
    stella.click("button:has-text('Create token')")
    expect(stella.locator("#new-token")).to_be_visible()
    assert violations(stella) == []
    context.close()


def test_skip_link_is_the_first_tab_stop_and_leads_to_the_rooms(browser, server):
    """Tab once shows "Skip to the open rooms"; Enter moves the focus past the header and list."""
    from playwright.sync_api import expect

    alice = open_chat(browser, server, "alice")
    alice.keyboard.press("Tab")
    skip = alice.locator(".skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    expect(skip).to_have_text("Skip to the open rooms")
    alice.keyboard.press("Enter")
    expect(alice.locator("#main")).to_be_focused()
    # One h1 for the page, an h2 for the room list, the direct messages and each open room (and
    # the search results panel's, while it is shown).
    join(alice, server.rooms["General"])
    expect(alice.locator("h1")).to_have_count(1)
    assert alice.locator("h2:visible").all_text_contents() == [
        "Rooms",
        "Direct messages",
        "General",
    ]
    alice.goto(server.url + "tokens/")
    alice.keyboard.press("Tab")
    expect(alice.locator(".skip-link")).to_be_focused()
    alice.context.close()


def test_shift_tab_from_the_composer_keeps_the_newest_messages_in_view(browser, server):
    """Shift+Tab from the message box stops in the newest messages, not at the top of history."""
    from playwright.sync_api import expect

    room = server.rooms["History"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    badge = alice.locator(f".room-toggle[data-room-id='{room}'] .unread")
    expect(badge).to_be_hidden()  # read to the end: no "Jump to first unread" after the reload
    alice.reload()
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    expect(pane).to_have_attribute("data-state", "joined")
    expect(messages(alice, room).first).to_have_attribute("data-seq", "71")
    expect(pane.locator(".jump-unread")).to_be_hidden()
    log = pane.locator(".messages")
    at_bottom = "l => l.scrollHeight - l.scrollTop - l.clientHeight <= 32"
    alice.wait_for_function(f"() => ({at_bottom})(document.querySelector('{log_selector(room)}'))")
    pane.locator(".composer-input").focus()
    alice.keyboard.press("Shift+Tab")
    # The newest post's actions button (issue 16), inside the list: the view stays at the bottom.
    expect(messages(alice, room).last.locator(".msg-actions-toggle")).to_be_focused()
    assert log.evaluate(at_bottom), log.evaluate("l => [l.scrollTop, l.scrollHeight]")
    expect(messages(alice, room).first).to_have_attribute("data-seq", "71")  # nothing paged in
    # The keyboard still reaches older messages: scrolling the focused list to the top pages back.
    log.focus()
    alice.keyboard.press("Home")
    expect(messages(alice, room).first).to_have_attribute("data-seq", "21")
    alice.context.close()


def log_selector(room: int) -> str:
    """The CSS selector of a room's message list."""
    return f'.room-pane[data-room-id="{room}"] .messages'


def test_new_messages_from_others_are_announced_through_a_live_region(browser, server):
    """Bob's message is put in Alice's polite live region; her own is not."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    announcer = alice.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    say(alice, room, "my own words")
    expect(messages(alice, room).last.locator(".body")).to_have_text("my own words")
    say(bob, room, "news for alice")
    expect(announcer).to_have_text("bob: news for alice")
    join(alice, server.rooms[LONG])
    say(bob, room, "more news")
    expect(announcer.locator("p").last).to_have_text("bob in General: more news")
    alice.context.close()
    bob.context.close()


def test_tap_targets_are_at_least_44_px_on_a_phone(browser, server):
    """Every button, link and field a finger uses on a phone is 44 x 44 px or more."""
    from playwright.sync_api import expect

    stella = open_chat(browser, server, "stella", viewport=PHONE, has_touch=True, is_mobile=True)
    measure = """() => [...document.querySelectorAll(
        'button, a[href], select, summary, textarea, input:not([type=hidden])')]
      .filter((e) => e.checkVisibility() && !e.closest('.body'))
      .map((e) => { const r = e.getBoundingClientRect();
        return [e.className || e.tagName, e.textContent.trim().slice(0, 20),
                Math.round(r.width), Math.round(r.height)]; })
      .filter(([, , w, h]) => w < 44 || h < 44)"""
    assert stella.evaluate(measure) == []  # the room list
    stella.tap(f".room-toggle[data-room-id='{server.rooms['General']}']")
    expect(stella.locator(".room-pane").first).to_have_attribute("data-state", "joined")
    say(stella, server.rooms["General"], "hello")
    expect(messages(stella, server.rooms["General"]).last.locator(".body")).to_have_text("hello")
    assert stella.evaluate(measure) == []  # a room
    stella.context.close()


def test_direct_messages_and_the_new_message_dialog_pass_axe_and_fit_fingers(browser, server):
    """The Direct messages list and the New message dialog: no axe violation; on a phone each
    person's row (its label, which toggles the box) and every button is 44 px or more."""
    from playwright.sync_api import expect

    bob = open_chat(browser, server, "bob", viewport=PHONE, has_touch=True, is_mobile=True)
    bob.tap("#direct-new")
    dialog = bob.get_by_role("dialog", name="New message")
    expect(dialog.get_by_role("checkbox", name="alice")).to_have_count(1)
    assert violations(bob) == []
    small = """() => [...document.querySelectorAll(
        '#new-direct :is(button, input, .people-list label)')]
      .filter((e) => e.checkVisibility() && !(e.type === 'checkbox' && e.closest('label')))
      .map((e) => { const r = e.getBoundingClientRect();
        return [e.className || e.tagName, Math.round(r.width), Math.round(r.height)]; })
      .filter(([, w, h]) => w < 44 || h < 44)"""
    assert bob.evaluate(small) == []
    dialog.get_by_text("alice").tap()
    dialog.get_by_role("button", name="Open conversation").tap()
    expect(bob.locator(".room-pane .pane-title", has_text="alice")).to_have_count(1)
    bob.tap("#show-rooms")
    expect(bob.locator("#directs .room-toggle")).to_have_count(1)
    assert violations(bob) == []
    bob.context.close()
