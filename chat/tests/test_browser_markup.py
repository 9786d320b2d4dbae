"""Formatted messages in a real browser: the XSS corpus runs nothing, formatting shows, the hint."""

import re

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say, shoot
from chat.tests.xss_corpus import CODE_BLOCK, FORMATTED, LIST, QUOTE, XSS_VECTORS
from multichat_client import RestClient
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

HALF = len(XSS_VECTORS) // 2  # a room shows its newest 50 on join: the corpus takes two rooms

# Everything in the message list that is not the app's own markup or the allow-list, as a page
# script sees it: tags, on* attributes, style attributes, link schemes, links without rel/target.
FORBIDDEN = """(pane) => {
  const allowed = new Set(["P", "BR", "EM", "STRONG", "DEL", "CODE", "PRE", "BLOCKQUOTE",
                           "UL", "OL", "LI", "A", "SPAN"]);
  const found = [];
  for (const body of pane.querySelectorAll(".message .body")) {
    for (const node of body.querySelectorAll("*")) {
      if (!allowed.has(node.tagName)) found.push(`tag ${node.tagName}`);
      for (const attr of node.attributes) {
        const ok = (node.tagName === "A" && ["href", "target", "rel"].includes(attr.name))
          || (node.tagName === "OL" && attr.name === "start");
        if (!ok) found.push(`${node.tagName}[${attr.name}=${attr.value}]`);
      }
      if (node.tagName === "A") {
        const href = node.getAttribute("href");
        if (!/^(https?|mailto):$/.test(node.protocol)) found.push(`href ${href}`);
        if (node.target !== "_blank" || node.rel !== "noopener noreferrer nofollow") {
          found.push(`link ${node.outerHTML}`);
        }
      }
    }
  }
  const active = "script, iframe, img, svg, math, style, object, embed";
  for (const node of pane.querySelectorAll(active)) {
    // The one element of these the app draws itself: the paperclip icon of "Attach files".
    if (node.tagName === "svg" && node.parentElement?.matches(".composer .attach")) continue;
    found.push(`anywhere: ${node.tagName}`);
  }
  return found;
}"""


@pytest.fixture(scope="module")
def server():
    """A real server with alice and bob, rooms for the corpus and for formatting, bob's token."""
    live = LiveServer(extra_env={"CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000"}).prepare()
    seeded = live.seed(
        users=["alice", "bob"], rooms=["XSS history", "XSS live", "Formatting"], tokens=["bob"]
    )
    live.rooms, live.tokens = seeded.rooms, seeded.tokens
    live.start()
    yield live
    live.stop()


def pane(page, room_id: int):
    """A room's pane."""
    return page.locator(f".room-pane[data-room-id='{room_id}']")


def hover_every_message(page, room_id: int) -> None:
    """Move the pointer over each message body, so a mouseover handler would fire if one existed."""
    bodies = pane(page, room_id).locator(".message .body")
    for i in range(bodies.count()):
        bodies.nth(i).hover()


def test_xss_corpus_through_the_server_runs_nothing_in_the_page(browser, server):
    """The corpus, stored through REST (history) and live, leaves no script, handler or scheme."""
    from playwright.sync_api import expect

    rest = RestClient(server.url, server.tokens["bob"])
    before, live = server.rooms["XSS history"], server.rooms["XSS live"]
    for vector in XSS_VECTORS[:HALF]:
        rest.post(before, vector)
    alice = open_chat(browser, server, "alice")
    join(alice, before)
    join(alice, live)
    for vector in XSS_VECTORS[HALF:]:
        rest.post(live, vector)
    expect(messages(alice, before)).to_have_count(HALF)
    expect(messages(alice, live)).to_have_count(len(XSS_VECTORS) - HALF)
    # The vectors that are formatted arrived as such: the renderer was in the path.
    expect(pane(alice, before).locator(".body.formatted").first).to_be_visible()
    expect(pane(alice, live).locator(".body.formatted").first).to_be_visible()
    for room in (before, live):
        hover_every_message(alice, room)
        assert pane(alice, room).evaluate(FORBIDDEN) == []
    assert alice.evaluate("() => [window.__xss, document.cookie.includes('xss')]") == [None, False]
    assert alice.dialogs == []
    alice.context.close()


def test_formatting_shows_code_quotes_lists_and_safe_links(browser, server):
    """Formatted messages sent live show as code, a quote, lists and a link opening a new tab."""
    from playwright.sync_api import expect

    room = server.rooms["Formatting"]
    alice = open_chat(browser, server, "alice", viewport={"width": 1100, "height": 760})
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    long_line = "`" * 3 + "\nprint('" + "x" * 300 + "')\n" + "`" * 3
    for text in (FORMATTED, QUOTE, LIST, CODE_BLOCK, long_line, "plain @alice see www.example.org"):
        say(bob, room, text)
    shown = messages(alice, room)
    expect(shown).to_have_count(6)
    first = shown.nth(0).locator(".body")
    expect(first.locator("strong")).to_have_text("Formatting")
    expect(first.locator("em")).to_have_text("em")
    expect(first.locator("del")).to_have_text("struck")
    expect(first.locator("code")).to_have_text("code")
    link = first.locator("a")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(shown.nth(1).locator("blockquote")).to_have_text("quoted line")
    expect(shown.nth(2).locator("ul > li")).to_have_text(["first item", "second item"])
    expect(shown.nth(2).locator("ol > li")).to_have_text(["one", "two"])
    code = shown.nth(3).locator("pre code")
    expect(code).to_have_text('for x in range(3):\n    print("<b>not bold</b>", x)\n')
    assert code.evaluate("(c) => getComputedStyle(c).fontFamily").lower().find("mono") >= 0
    # A long code line scrolls inside its block; the page and the list never scroll sideways.
    wide = shown.nth(4).locator("pre")
    assert wide.evaluate("(p) => p.scrollWidth > p.clientWidth + 100")
    assert wide.evaluate("(p) => getComputedStyle(p).overflowX") == "auto"
    list_ = pane(alice, room).locator(".messages")
    assert list_.evaluate("(l) => l.scrollWidth <= l.clientWidth")
    assert alice.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    # Plain text stays plain: links made by the page, the mention highlighted as before.
    plain = shown.nth(5)
    expect(plain.locator(".body")).not_to_have_class(re.compile(r"\bformatted\b"))
    expect(plain.locator("a")).to_have_attribute("href", "https://www.example.org/")
    expect(plain).to_have_class(re.compile(r"\bmention\b"))
    assert pane(alice, room).evaluate(FORBIDDEN) == []
    # The formatting hint: a toggle button, by keyboard.
    toggle = pane(alice, room).locator(".format-help-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    help_ = pane(alice, room).locator(".format-help")
    expect(help_).to_be_hidden()
    toggle.focus()
    alice.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(help_).to_be_visible()
    expect(help_.locator("code").first).to_have_text("**bold**")
    assert toggle.get_attribute("aria-controls") == help_.get_attribute("id")
    shoot(alice, "formatting.png")
    alice.keyboard.press("Enter")
    expect(help_).to_be_hidden()
    assert alice.dialogs == [] and bob.dialogs == []
    alice.context.close()
    bob.context.close()
