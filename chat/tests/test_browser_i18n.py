"""The chat page's own texts (made by its JavaScript) in the browser's language."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say, shoot
from testkit.live import LiveServer, password_for

pytestmark = pytest.mark.browser

GERMAN = {"locale": "de-DE", "timezone_id": "Europe/Berlin"}
ENGLISH = {"locale": "en-US", "timezone_id": "Europe/Berlin"}


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob and two rooms."""
    live = LiveServer().prepare()
    live.rooms = live.seed(users=["alice", "bob"], rooms=["General", "Badges"]).rooms
    live.start()
    yield live
    live.stop()


def pane(page, room_id: int):
    """A room's pane."""
    return page.locator(f".room-pane[data-room-id='{room_id}']")


def max_length(page) -> int:
    """The message length limit the page was given."""
    config = page.locator("#chat-config").text_content() or "{}"
    return int(json.loads(config)["maxMessageLength"])


def test_the_chat_page_speaks_german_to_a_german_browser(browser, server):
    """A de-DE browser: connection state, pane, day, times, errors and badges are German."""
    from playwright.sync_api import expect

    general = server.rooms["General"]
    alice = open_chat(browser, server, "alice", **GERMAN)
    bob = open_chat(browser, server, "bob", **ENGLISH)
    assert alice.evaluate("() => document.documentElement.lang") == "de"
    expect(alice.locator("#conn-state")).to_have_text("Verbunden")
    join(alice, general)
    join(bob, general)
    room = pane(alice, general)
    box = room.locator(".composer-input")
    expect(box).to_have_attribute("placeholder", "Nachricht an General")
    expect(room.locator(".composer")).to_have_attribute("aria-label", "An General schreiben")
    expect(room.locator(".composer-send")).to_have_text("Senden")
    expect(room.locator(".pane-menu-toggle")).to_have_attribute("aria-label", "Raumoptionen")
    expect(room.locator(".pane-close")).to_have_attribute("aria-label", "General schließen")
    expect(room.locator(".members-summary")).to_have_text("Mitglieder (2)")
    expect(room.locator(".messages")).to_have_attribute("aria-label", "Nachrichten in General")
    bob_came = room.locator(".msg-enter").filter(has_text="bob").last
    expect(bob_came).to_contain_text("bob hat den Raum betreten")  # the server sends English

    bob.locator(f".room-pane[data-room-id='{general}'] .composer-input").fill("typing a hello")
    expect(room.locator(".typing")).to_have_text("bob tippt…")
    say(bob, general, "Hallo Alice!")
    expect(messages(alice, general).last.locator(".body")).to_have_text("Hallo Alice!")
    expect(room.locator(".day-separator")).to_have_text("Heute")
    expect(messages(alice, general).last.locator("time")).to_have_text("gerade eben")
    expect(room.locator(".history-status")).to_have_text("Hier beginnt General.")

    box.fill("x" * (max_length(alice) + 1))
    box.press("Enter")
    limit = max_length(alice)
    expect(room.locator(".pane-error .error-text")).to_have_text(
        f"Eine Nachricht darf höchstens {limit} Zeichen lang sein."
    )
    expect(room.locator(".error-close")).to_have_attribute("aria-label", "Schließen")
    box.fill("")

    badges = server.rooms["Badges"]  # alice never opens it: every message there is unread
    join(bob, badges)
    say(bob, badges, "@alice look at this")
    badge = alice.locator(f".room-toggle[data-room-id='{badges}'] .unread")
    expect(badge).to_have_attribute("aria-label", "1 ungelesene Nachricht, 1 mit Erwähnung")
    say(bob, badges, "and this")
    expect(badge).to_have_attribute("aria-label", "2 ungelesene Nachrichten, 1 mit Erwähnung")
    shoot(alice, "chat-german.png")

    alice.locator("#me-button").click()
    card = alice.get_by_role("dialog")
    joined = re.compile(r"^Dabei seit \d+\. \w+ \d{4}\.$")  # e.g. "29. November 2026"
    expect(card.locator(".profile-joined")).to_have_text(joined)
    expect(card.get_by_label("Anzeigename")).to_be_visible()
    expect(card.locator(".profile-close")).to_have_text("Schließen")
    alice.context.close()
    bob.context.close()


def test_issue_16s_controls_speak_german_and_fit(browser, server):
    """Search, direct messages, formatting help and a post's actions are German, and fit."""
    from playwright.sync_api import expect

    general = server.rooms["General"]
    alice = open_chat(browser, server, "alice", **GERMAN)
    bob = open_chat(browser, server, "bob", **ENGLISH)
    expect(alice.get_by_role("searchbox", name="Nachrichten suchen")).to_have_attribute(
        "placeholder", "Nachrichten suchen"
    )
    # The heading's soft hyphen is no part of its name; the button stays inside the room list.
    heading = alice.get_by_role("heading", name="Direktnachrichten", exact=True)
    expect(heading).to_be_visible()
    new = alice.locator("#direct-new")
    inside = (
        "b => b.getBoundingClientRect().right <= b.closest('nav').getBoundingClientRect().right"
    )
    assert new.evaluate(inside), "the New message button sticks out of the room list"
    expect(new).to_have_text("Schreiben")
    join(alice, general)
    join(bob, general)
    room = pane(alice, general)
    toggle = room.locator(".format-help-toggle")
    expect(toggle).to_have_text("Formatierungshilfe")
    toggle.click()
    expect(room.locator(".format-help code").first).to_have_text("**fett**")
    note = room.locator(".format-help-note")
    expect(note).to_have_text("Umschalt+Enter beginnt eine neue Zeile.")
    say(bob, general, "Antwortet jemand?")
    post = messages(alice, general).filter(has_text="Antwortet jemand?")
    post.hover()
    actions = post.locator(".msg-actions-toggle")
    expect(actions).to_have_attribute("aria-label", "Aktionen für die Nachricht von bob")
    actions.click()
    menu = alice.get_by_role("group", name="Nachrichtenaktionen")
    expect(menu.get_by_role("button")).to_have_text(["Reagieren…", "Antworten"])
    menu.get_by_role("button", name="Antworten").click()
    expect(room.get_by_text("Antwort an bob: Antwortet jemand?")).to_be_visible()
    alice.context.close()
    bob.context.close()


def test_relative_times_follow_the_browsers_locale(browser, server):
    """A German page whose clock is 90 s ahead reads a new message's time as "vor 1 Minute"."""
    from playwright.sync_api import expect

    general = server.rooms["General"]
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **GERMAN)
    context.clock.install(time=datetime.now(UTC) + timedelta(seconds=90))
    alice = context.new_page()
    alice.goto(server.url + "login/")
    alice.fill("#id_username", "alice")
    alice.fill("#id_password", password_for("alice"))
    alice.click("button[type=submit]")
    expect(alice.locator("#conn-state")).to_have_text("Verbunden")
    bob = open_chat(browser, server, "bob", **ENGLISH)
    join(alice, general)
    join(bob, general)
    say(bob, general, "just posted, on the server's clock")
    newest = messages(alice, general).last
    expect(newest.locator(".body")).to_have_text("just posted, on the server's clock")
    expect(newest.locator("time")).to_have_text("vor 1 Minute")
    expect(messages(bob, general).last.locator("time")).to_have_text("just now")
    context.close()
    bob.context.close()


def test_an_english_browser_still_gets_english(browser, server):
    """An en-US browser sees the same texts in English (the catalogue's default language)."""
    from playwright.sync_api import expect

    general = server.rooms["General"]
    alice = open_chat(browser, server, "alice", **ENGLISH)
    assert alice.evaluate("() => document.documentElement.lang") == "en"
    expect(alice.locator("#conn-state")).to_have_text("Connected")
    join(alice, general)
    room = pane(alice, general)
    box = room.locator(".composer-input")
    expect(box).to_have_attribute("placeholder", "Message General")
    expect(room.locator(".composer-send")).to_have_text("Send")
    say(alice, general, "Hello in English")
    expect(messages(alice, general).last.locator("time")).to_have_text("just now")
    expect(room.locator(".day-separator").last).to_have_text("Today")
    box.fill("x" * (max_length(alice) + 1))
    box.press("Enter")
    expect(room.locator(".pane-error .error-text")).to_have_text(
        f"A message may have at most {max_length(alice)} characters."
    )
    alice.context.close()
