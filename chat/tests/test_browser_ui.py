"""The chat page in a real browser: Debian's Chromium, driven by Playwright, on a real server."""

import os
import re
import shutil

import pytest

from testkit import ROOT
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "docs" / "screenshots"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob, a staff member and three rooms."""
    live = LiveServer().prepare()
    live.rooms = live.seed(
        users=["alice", "bob"],
        staff=["stella"],
        rooms=["General", "Random"],
        staff_rooms=["Staff lounge"],
    ).rooms
    live.start()
    yield live
    live.stop()


def open_chat(browser, server, user: str, **context_options):
    """A new browser context logged in as ``user`` through the login form, on the chat page."""
    from playwright.sync_api import expect

    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context_options})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server.url + "login/")
    page.fill("#id_username", user)
    page.fill("#id_password", f"{user}-pw-1234")
    page.click("button[type=submit]")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    return page


def join(page, room_id: int):
    """Click a room's toggle; wait until its pane has joined and shows its newest history."""
    from playwright.sync_api import expect

    page.click(f".room-toggle[data-room-id='{room_id}']")
    pane = page.locator(f".room-pane[data-room-id='{room_id}']")
    expect(pane).to_have_attribute("data-state", "joined")
    expect(pane.locator(".history-status")).to_have_attribute(
        "data-state", re.compile("start|more")
    )


def say(page, room_id: int, text: str) -> None:
    """Type ``text`` in the room's composer and press Enter."""
    box = page.locator(f".room-pane[data-room-id='{room_id}'] .composer-input")
    lines = text.split("\n")
    box.fill(lines[0])
    for line in lines[1:]:
        box.press("Shift+Enter")
        box.type(line)
    box.press("Enter")


def messages(page, room_id: int):
    """The stored messages shown in a room's pane."""
    return page.locator(f".room-pane[data-room-id='{room_id}'] .message[data-seq]:not(.pending)")


def shoot(page, name: str) -> None:
    """Save a screenshot in test-artifacts/; with UPDATE_SCREENSHOTS=1 also in docs/screenshots."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / name, SCREENSHOTS / name)


def test_two_users_chat_in_one_room(browser, server):
    """Alice and Bob, in two browsers, see each other's messages; Shift+Enter keeps a newline."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    say(alice, room, "Hello Bob!")
    expect(messages(bob, room).last.locator(".body")).to_have_text("Hello Bob!")
    expect(messages(bob, room).last).to_have_attribute("data-user", "alice")
    say(bob, room, "Hi Alice,\nhow are you?")
    last = messages(alice, room).last
    expect(last.locator(".body")).to_have_text("Hi Alice,\nhow are you?")
    assert last.locator(".body").evaluate("el => el.innerText") == "Hi Alice,\nhow are you?"
    bob_here = alice.locator(f".room-pane[data-room-id='{room}'] .member[data-user='bob']")
    expect(bob_here).to_have_attribute("data-state", "online")  # the member list is up to date
    join(alice, server.rooms["Random"])
    shoot(alice, "chat-desktop.png")
    alice.set_viewport_size({"width": 390, "height": 844})
    shoot(alice, "chat-phone.png")
    alice.context.close()
    bob.context.close()


def test_non_staff_never_sees_a_staff_only_room(browser, server):
    """The staff-only room is not listed for Alice; Stella (staff) sees it, marked."""
    from playwright.sync_api import expect

    staff_room = server.rooms["Staff lounge"]
    alice = open_chat(browser, server, "alice")
    expect(alice.locator(f".room-toggle[data-room-id='{staff_room}']")).to_have_count(0)
    expect(alice.locator("#rooms")).not_to_contain_text("Staff lounge")
    stella = open_chat(browser, server, "stella", color_scheme="dark")
    toggle = stella.locator(f".room-toggle[data-room-id='{staff_room}']")
    expect(toggle.locator(".badge-staff")).to_be_visible()
    join(stella, staff_room)
    say(stella, staff_room, "Only staff can read this.")
    expect(messages(stella, staff_room).last.locator(".body")).to_have_text(
        "Only staff can read this."
    )
    shoot(stella, "chat-dark.png")
    alice.context.close()
    stella.context.close()


def test_html_in_a_message_shows_literally_and_runs_nothing(browser, server):
    """Hostile markup is shown as text under the real CSP: no element, no script, no dialog."""
    from playwright.sync_api import expect

    room = server.rooms["Random"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    payloads = ["<img src=x onerror=alert(1)>", "<script>window.pwned=1</script><b>bold</b>"]
    for payload in payloads:
        say(alice, room, payload)
    for payload in payloads:
        expect(messages(bob, room).filter(has_text=payload)).to_have_count(1)
    pane = bob.locator(f".room-pane[data-room-id='{room}'] .messages")
    expect(pane.locator("img")).to_have_count(0)
    expect(pane.locator("b")).to_have_count(0)
    expect(pane.locator("script")).to_have_count(0)
    assert bob.evaluate("() => window.pwned") is None
    assert bob.dialogs == [] and alice.dialogs == []
    alice.context.close()
    bob.context.close()


def test_a_server_restart_mid_conversation_shows_every_message_once(browser, server):
    """Stop the server mid-chat, queue a message offline, restart: every seq once, in order."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    start = messages(bob, room).count()
    for i in range(3):
        say(alice, room, f"before restart {i}")
    expect(messages(bob, room)).to_have_count(start + 3)

    server.stop()
    expect(alice.locator("#conn-state")).not_to_have_attribute("data-state", "connected")
    say(alice, room, "typed while offline")
    queued = alice.locator(f".room-pane[data-room-id='{room}'] .message.pending")
    expect(queued).to_have_count(1)
    shoot(alice, "reconnecting.png")
    server.start()

    for page in (alice, bob):
        expect(page.locator("#conn-state")).to_have_attribute(
            "data-state", "connected", timeout=20000
        )
    expect(queued).to_have_count(0, timeout=10000)
    for page in (alice, bob):
        shown = messages(page, room)
        expect(shown.last.locator(".body")).to_have_text("typed while offline", timeout=10000)
        seqs = [int(s) for s in shown.evaluate_all("els => els.map(e => e.dataset.seq)")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        texts = shown.locator(".body").all_inner_texts()
        assert texts[-4:] == [f"before restart {i}" for i in range(3)] + ["typed while offline"]
    alice.context.close()
    bob.context.close()


def test_the_login_page(browser, server):
    """The login page renders its form (and is the first screenshot of the README)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url)
    assert page.url.endswith("/login/?next=/")
    assert page.locator("#id_username").is_visible()
    shoot(page, "login.png")
    page.close()


def test_links_are_clickable_and_safe(browser, server):
    """http(s) URLs become links opened with rel=noopener noreferrer; other schemes stay text."""
    from playwright.sync_api import expect

    room = server.rooms["Random"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    say(alice, room, "docs at https://example.com/guide?a=1 and javascript:alert(1)")
    body = messages(alice, room).last.locator(".body")
    expect(body).to_contain_text("javascript:alert(1)")
    links = body.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/guide?a=1")
    expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(links).to_have_attribute("target", "_blank")
    alice.context.close()


def test_scrolling_up_loads_older_history_without_jumping(browser, server):
    """A long room opens on its newest page; scrolling up pages back to seq 1, keeping the view."""
    from playwright.sync_api import expect

    room = server.create_room("Long history")
    server.testkit("post", room_id=room, texts=[f"old {i}" for i in range(1, 121)], username="bob")
    alice = open_chat(browser, server, "alice")
    alice.reload()  # the room list is rendered with the page
    join(alice, room)
    shown = messages(alice, room)
    expect(shown.first).to_have_attribute("data-seq", "71")
    expect(shown.last).to_have_attribute("data-seq", "120")
    log = alice.locator(f".room-pane[data-room-id='{room}'] .messages")
    anchor = alice.locator(f".room-pane[data-room-id='{room}'] .message[data-seq='71']")
    before = log.evaluate(
        "(el) => { el.scrollTop = 0; const m = el.querySelector('[data-seq=\"71\"]');"
        " return m.getBoundingClientRect().top; }"
    )
    expect(shown.first).to_have_attribute("data-seq", "21")
    after = anchor.evaluate("(m) => m.getBoundingClientRect().top")
    assert abs(after - before) < 40, (before, after)  # the reader's place is kept
    status = alice.locator(f".room-pane[data-room-id='{room}'] .history-status")
    while status.get_attribute("data-state") != "start":
        log.evaluate("(el) => { el.scrollTop = 0; }")
        alice.wait_for_timeout(200)
    seqs = [int(s) for s in shown.evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == list(range(1, 121))
    alice.context.close()
