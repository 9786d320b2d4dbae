"""The search box: type, Enter, results with <mark>, open one: its room jumps to the message."""

import pytest

from chat.tests.test_browser_ui import open_chat, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
FILLER = 130  # more than two history pages (50, then 100 per jump): the target is far back


@pytest.fixture(scope="module")
def server():
    """alice and staff stella; in Harbour one old lighthouse message under many newer ones."""
    live = LiveServer(extra_env={"NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0"}).prepare()
    made = live.seed(
        users=["alice", "bob"],
        staff=["stella"],
        rooms=["Harbour", "Quay"],
        staff_rooms=["Staff lounge"],
    )
    live.rooms = made.rooms
    harbour = made.rooms["Harbour"]
    live.testkit(
        "post",
        room_id=harbour,
        texts=["The lighthouse keeper wrote <b>everything</b> down"],
        username="bob",
    )
    live.testkit(
        "post", room_id=harbour, texts=[f"filler note {i}" for i in range(FILLER)], username="bob"
    )
    live.testkit(
        "post", room_id=made.rooms["Quay"], texts=["A lighthouse on the quay?"], username="alice"
    )
    live.testkit(
        "post",
        room_id=made.rooms["Staff lounge"],
        texts=["lighthouse budget, staff only"],
        username="stella",
    )
    live.start()
    yield live
    live.stop()


def search(page, query: str) -> None:
    """Type ``query`` in the top bar's search box and press Enter."""
    box = page.get_by_role("searchbox", name="Search messages")
    box.fill(query)
    box.press("Enter")


def test_search_finds_marks_and_jumps_to_an_old_message(browser, server):
    """Enter searches; results mark the word, hide staff rooms; Enter on one jumps far back."""
    from playwright.sync_api import expect

    page = open_chat(browser, server, "alice")
    search(page, "lighthouse")
    panel = page.get_by_role("region", name="Search results")
    results = panel.locator(".search-result")
    expect(results).to_have_count(2)
    expect(panel.locator(".search-status")).to_have_text("2 results")
    expect(panel).not_to_contain_text("budget")
    expect(results.nth(0)).to_contain_text("Quay")
    old = results.nth(1)
    expect(old.locator("mark")).to_have_text("lighthouse")
    expect(old).to_contain_text("<b>everything</b>")  # user markup shows as text
    expect(old.locator(".search-room")).to_have_text("Harbour")
    shoot(page, "search.png")

    page.keyboard.press("ArrowDown")
    expect(results.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(results.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel).to_be_hidden()
    pane = page.locator(f".room-pane[data-room-id='{server.rooms['Harbour']}']")
    target = pane.locator(".message[data-seq='1']")
    expect(target).to_be_in_viewport()
    expect(target).to_be_focused()
    expect(target).to_have_class(__import__("re").compile("jump-target"))
    expect(target).to_contain_text("The lighthouse keeper wrote")


def test_escape_closes_more_results_pages_and_bad_queries_say_why(browser, server):
    """Escape closes the panel (focus back in the box); "More results" pages; syntax: no error."""
    from playwright.sync_api import expect

    page = open_chat(browser, server, "alice")
    search(page, "filler")
    panel = page.get_by_role("region", name="Search results")
    expect(panel.locator(".search-result")).to_have_count(20)
    more = panel.get_by_role("button", name="More results")
    more.click()
    expect(panel.locator(".search-result")).to_have_count(40)
    expect(panel.locator(".search-result").nth(20)).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("searchbox", name="Search messages")).to_be_focused()
    search(page, '"*(^:)')  # query syntax and no word: found nothing, and no error
    expect(panel.locator(".search-status")).to_have_text('No messages found for “"*(^:)”.')
    expect(panel.locator(".search-result")).to_have_count(0)
    search(page, "nothingmatchesthis")
    expect(panel.locator(".search-status")).to_have_text(
        "No messages found for “nothingmatchesthis”."
    )


def test_search_on_a_phone_opens_the_room_at_the_message(browser, server):
    """On a phone the box and results have 44 px targets; a result replaces the list by the room."""
    from playwright.sync_api import expect

    page = open_chat(browser, server, "alice", viewport=PHONE, has_touch=True, is_mobile=True)
    box = page.get_by_role("searchbox", name="Search messages")
    assert box.bounding_box()["height"] >= 44
    search(page, "quay")
    result = page.locator(".search-result")
    expect(result).to_have_count(1)
    assert result.bounding_box()["height"] >= 44
    result.tap()
    pane = page.locator(f".room-pane[data-room-id='{server.rooms['Quay']}']")
    expect(pane.locator(".message[data-seq='1']")).to_be_in_viewport()
    expect(page.locator(".room-list")).to_be_hidden()
