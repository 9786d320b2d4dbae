"""The chat page under tight command budgets: a refused join or page is retried, never dropped."""

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

WAIT_MS = 30_000  # a refused command is retried after retry_after (up to 5 s here)


@pytest.fixture(scope="module")
def server():
    """A real server that allows one join and one history page per 5 s per user."""
    live = LiveServer(
        extra_env={
            "CHAT_JOIN_RATE": "0.2",
            "CHAT_JOIN_BURST": "1",
            "CHAT_HISTORY_RATE": "0.2",
            "CHAT_HISTORY_BURST": "1",
        }
    ).prepare()
    live.rooms = live.seed(users=["alice", "bob"], rooms=["General", "Random"]).rooms
    live.start()
    yield live
    live.stop()


def test_a_room_whose_join_was_rate_limited_joins_when_allowed(browser, server):
    """Opening a second room at once is refused for the budget; the pane joins after retry_after."""
    from playwright.sync_api import expect

    alice = open_chat(browser, server, "alice")
    join(alice, server.rooms["General"])
    random_room = server.rooms["Random"]
    alice.click(f".room-toggle[data-room-id='{random_room}']")  # within the 5 s: refused
    pane = alice.locator(f".room-pane[data-room-id='{random_room}']")
    expect(pane).to_have_attribute("data-state", "joined", timeout=WAIT_MS)
    expect(pane.locator(".history-status")).to_have_attribute(
        "data-state", "start", timeout=WAIT_MS
    )
    bob = open_chat(browser, server, "bob")
    join(bob, random_room)
    box = bob.locator(f".room-pane[data-room-id='{random_room}'] .composer-input")
    box.fill("you made it")
    box.press("Enter")
    expect(messages(alice, random_room).last.locator(".body")).to_have_text(
        "you made it", timeout=WAIT_MS
    )
    alice.context.close()
    bob.context.close()
