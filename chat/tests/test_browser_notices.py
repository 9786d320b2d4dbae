"""Enter/leave notices in the browser: a page reload is not "left" and "joined" again."""

import pytest

from chat.tests.test_browser_ui import join, open_chat, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

GRACE = 5.0  # CHAT_PRESENCE_GRACE_SECONDS: a reload and a re-join fit in it


@pytest.fixture(scope="module")
def server():
    """A real server with a short grace, three people and a room."""
    live = LiveServer(extra_env={"CHAT_PRESENCE_GRACE_SECONDS": str(GRACE)}).prepare()
    live.rooms = live.seed(users=["alice", "bob", "carol"], rooms=["General"]).rooms
    live.start()
    yield live
    live.stop()


def notices(page, room_id: int, kind: str):
    """The enter ("msg-enter") or leave ("msg-leave") lines shown in a room's pane."""
    return page.locator(f".room-pane[data-room-id='{room_id}'] .message.{kind}")


def rejoin(page, room_id: int) -> None:
    """After a reload: join the room unless the page re-opened it by itself."""
    toggle = page.locator(f".room-toggle[data-room-id='{room_id}']")
    if toggle.get_attribute("aria-pressed") != "true":
        join(page, room_id)


def test_a_page_reload_shows_no_new_joined_or_left_line_to_others(browser, server):
    """bob reloads his page and comes back: alice sees one "joined" line for him, no "left"."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    carol = open_chat(browser, server, "carol")  # the witness: her leave is due after bob's
    join(carol, room)
    bob = open_chat(browser, server, "bob")
    join(bob, room)
    bob_joined = notices(alice, room, "msg-enter").filter(has_text="bob")
    expect(bob_joined).to_have_count(1)
    expect(bob_joined).to_contain_text("joined the room")

    bob.reload()
    expect(bob.locator("#conn-state")).to_have_attribute("data-state", "connected")
    rejoin(bob, room)
    carol.context.close()  # carol really goes: after the grace alice sees her leave
    carol_left = notices(alice, room, "msg-leave").filter(has_text="carol")
    expect(carol_left).to_have_count(1, timeout=(GRACE + 10) * 1000)
    # bob's leave, had it been announced, was due before carol's.
    expect(notices(alice, room, "msg-leave").filter(has_text="bob")).to_have_count(0)
    expect(bob_joined).to_have_count(1)
    shoot(alice, "notices-after-reload.png")
    alice.context.close()
    bob.context.close()
