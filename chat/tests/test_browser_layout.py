"""Where open rooms show: long titles, panes or tabs, the phone's one-room view, restoring."""

import pytest

from chat.tests.test_browser_ui import join, open_chat, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

LONG = (
    "The quarterly planning of everything the team does, with notes, minutes and"
    " follow-ups for every department"
)
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server():
    """A real server with alice and bob, three short room titles and one very long one."""
    live = LiveServer().prepare()
    live.rooms = live.seed(
        users=["alice", "bob"], rooms=["General", LONG, "Random", "Design"]
    ).rooms
    live.start()
    yield live
    live.stop()


def pane(page, room_id: int):
    """A room's pane."""
    return page.locator(f".room-pane[data-room-id='{room_id}']")


def open_rooms(page) -> list[int]:
    """The ids of the panes on the page, in order (shown or not)."""
    ids = page.locator(".room-pane").evaluate_all("ps => ps.map(p => Number(p.dataset.roomId))")
    return list(ids)


def test_long_titles_end_in_an_ellipsis_and_never_widen_the_room_list(browser, server):
    """Opening the long room keeps the room list still; titles end in "…", in full on hover."""
    from playwright.sync_api import expect

    long_room = server.rooms[LONG]
    alice = open_chat(browser, server, "alice")
    join(alice, long_room)
    join(alice, server.rooms["General"])
    nav = alice.locator(".room-list")
    width = nav.evaluate(
        "n => ({left: n.scrollLeft, scroll: n.scrollWidth, client: n.clientWidth})"
    )
    assert width["left"] == 0 and width["scroll"] <= width["client"], width
    for title in ("General", "Random", "Design"):
        name = alice.locator(f".room-toggle[data-room-id='{server.rooms[title]}'] .room-name")
        expect(name).to_be_in_viewport(ratio=1)
    name = alice.locator(f".room-toggle[data-room-id='{long_room}'] .room-name")
    expect(name).to_have_attribute("title", LONG)
    assert name.evaluate("n => n.scrollWidth > n.clientWidth")  # cut short, with an ellipsis
    assert name.evaluate("n => getComputedStyle(n).textOverflow") == "ellipsis"
    title = pane(alice, long_room).locator(".pane-title")
    expect(title).to_have_attribute("title", LONG)
    assert title.evaluate("n => getComputedStyle(n).textOverflow") == "ellipsis"
    close = pane(alice, long_room).locator(".pane-close")
    expect(close).to_be_in_viewport(ratio=1)  # the title does not push the close button away
    shoot(alice, "chat-long-titles.png")

    alice.set_viewport_size(PHONE)
    alice.click("#show-rooms")
    alice.click(f".room-toggle[data-room-id='{long_room}']")
    expect(pane(alice, long_room)).to_be_visible()
    overflow = alice.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    expect(pane(alice, long_room).locator(".pane-close")).to_be_in_viewport(ratio=1)
    box = pane(alice, long_room).locator(".composer-input").bounding_box()
    assert box is not None and box["height"] < 60, box  # the placeholder does not wrap 4 lines
    alice.context.close()


def test_open_rooms_and_the_front_one_come_back_after_reload_and_a_new_login(browser, server):
    """Alice's open rooms, in order, with the one used last in front, survive reload and login."""
    from playwright.sync_api import expect

    general, random, design = (server.rooms[t] for t in ("General", "Random", "Design"))
    alice = open_chat(browser, server, "alice")
    for room in (general, random, design):
        join(alice, room)
    alice.click(f".room-toggle[data-room-id='{random}']")  # panes: clicking an open room leaves it
    expect(pane(alice, random)).to_have_count(0)
    alice.reload()
    for room in (general, design):
        expect(pane(alice, room)).to_have_attribute("data-state", "joined")
    assert open_rooms(alice) == [general, design]
    expect(alice.locator(f".room-toggle[data-room-id='{design}']")).to_have_attribute(
        "aria-pressed", "true"
    )

    alice.click("#view-toggle")  # one room at a time; General in front
    alice.click(f"#tab-{general}")
    expect(pane(alice, design)).to_be_hidden()
    alice.click("button:has-text('Log out')")
    alice.wait_for_url("**/login/**")
    alice.fill("#id_username", "alice")
    alice.fill("#id_password", "alice-pw-1234")
    alice.click("button[type=submit]")
    expect(pane(alice, general)).to_have_attribute("data-state", "joined")
    expect(pane(alice, general)).to_be_visible()
    expect(pane(alice, design)).to_be_hidden()
    expect(alice.locator(f"#tab-{general}")).to_have_attribute("aria-selected", "true")
    assert open_rooms(alice) == [general, design]

    stored = {"cookies": [], "origins": alice.context.storage_state()["origins"]}
    bob = open_chat(browser, server, "bob", storage_state=stored)  # same browser storage
    expect(bob.locator(".room-pane")).to_have_count(0)  # kept per user, not per browser
    bob.context.close()
    alice.context.close()


def test_phone_shows_one_room_at_a_time_with_the_room_list_a_tap_away(browser, server):
    """On a phone a room fills the screen (no page scroll); "Rooms" goes back to the list."""
    from playwright.sync_api import expect

    general, random = server.rooms["General"], server.rooms["Random"]
    server.testkit("post", room_id=random, texts=[f"line {i}" for i in range(30)], username="bob")
    alice = open_chat(browser, server, "alice", viewport=PHONE, has_touch=True, is_mobile=True)
    rooms_button = alice.locator("#show-rooms")
    expect(alice.locator(".room-list")).to_be_visible()
    expect(rooms_button).to_be_hidden()
    alice.tap(f".room-toggle[data-room-id='{general}']")
    expect(pane(alice, general)).to_have_attribute("data-state", "joined")
    expect(alice.locator(".room-list")).to_be_hidden()
    rooms_button.tap()
    expect(alice.locator(".room-list")).to_be_visible()
    alice.tap(f".room-toggle[data-room-id='{random}']")
    expect(pane(alice, random)).to_have_attribute("data-state", "joined")
    expect(pane(alice, general)).to_be_hidden()  # still open (joined), just not shown
    expect(pane(alice, general)).to_have_attribute("data-state", "joined")
    expect(pane(alice, random).locator(".message[data-seq]")).to_have_count(30)
    # One scrolling list (the messages), not a scrolling page around scrolling panes.
    page_scroll = alice.evaluate("() => document.documentElement.scrollHeight - window.innerHeight")
    assert page_scroll <= 0, page_scroll
    composer = pane(alice, random).locator(".composer-input").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= PHONE["height"]
    shoot(alice, "chat-phone-room.png")

    alice.reload()  # what a phone does to a tab it dropped: the room comes back in front
    expect(pane(alice, random)).to_have_attribute("data-state", "joined")
    expect(pane(alice, random)).to_be_visible()
    expect(alice.locator(".room-list")).to_be_hidden()
    rooms_button.tap()
    shoot(alice, "chat-phone-rooms.png")
    alice.context.close()


def test_desktop_tabs_show_one_room_at_a_time_and_the_choice_is_remembered(browser, server):
    """The view toggle swaps side-by-side panes for tabs; arrow keys move between tabs."""
    from playwright.sync_api import expect

    general, long_room = server.rooms["General"], server.rooms[LONG]
    alice = open_chat(browser, server, "alice")
    join(alice, general)
    join(alice, long_room)
    expect(pane(alice, general)).to_be_visible()
    expect(pane(alice, long_room)).to_be_visible()  # side by side, the default
    toggle = alice.locator("#view-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    tabs = alice.locator("#room-tabs [role=tab]")
    expect(tabs).to_have_count(2)
    expect(pane(alice, general)).to_be_hidden()
    expect(pane(alice, long_room)).to_be_visible()
    expect(alice.locator(f"#tab-{long_room}")).to_have_attribute("aria-selected", "true")
    expect(alice.locator(f"#tab-{long_room}")).to_have_attribute("title", LONG)
    shoot(alice, "chat-tabs.png")
    alice.locator(f"#tab-{long_room}").focus()
    alice.keyboard.press("ArrowLeft")
    expect(alice.locator(f"#tab-{general}")).to_be_focused()
    expect(pane(alice, general)).to_be_visible()
    expect(pane(alice, long_room)).to_be_hidden()
    # A room in the list that is open comes to the front instead of closing.
    alice.click(f".room-toggle[data-room-id='{long_room}']")
    expect(pane(alice, long_room)).to_be_visible()
    expect(alice.locator(f".room-toggle[data-room-id='{long_room}']")).to_have_attribute(
        "aria-current", "true"
    )

    alice.reload()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(tabs).to_have_count(2)
    expect(pane(alice, long_room)).to_be_visible()
    expect(pane(alice, general)).to_be_hidden()
    toggle.click()
    expect(pane(alice, general)).to_be_visible()
    expect(pane(alice, long_room)).to_be_visible()
    expect(alice.locator("#room-tabs")).to_be_hidden()
    alice.context.close()
