"""Reading comfort in the browser: day separators, relative times, long messages folded, links."""

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say, shoot
from testkit.live import LiveServer, password_for

pytestmark = pytest.mark.browser

LONG_TEXT = "\n".join(f"line {i} of a long report" for i in range(1, 25))


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob and rooms for the timeline's tests.

    Without enter/leave notices: they carry the server's time, which the
    midnight test's page clock is deliberately behind.
    """
    live = LiveServer(extra_env={"NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0"}).prepare()
    live.rooms = live.seed(users=["alice", "bob"], rooms=["Long", "Links"]).rooms
    live.start()
    yield live
    live.stop()


def zone_just_past_midnight(now: datetime) -> str:
    """A whole-hour time zone in which ``now`` (UTC) is between 00:00 and 01:00 local time."""
    offset = (24 - now.hour) % 24
    if offset > 14:  # the zones run from UTC-12 to UTC+14
        offset -= 24
    # POSIX-style names: Etc/GMT-3 is three hours *ahead* of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def clock_text(moment: datetime) -> str:
    """``moment``'s short time as en-US Intl writes it, e.g. "10:49 PM"."""
    return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def plain(text: str) -> str:
    """Intl's narrow no-break spaces as plain spaces."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


def open_at(browser, server, user: str, *, clock: datetime, zone: str):
    """Log ``user`` in with the page's clock starting at ``clock`` in time zone ``zone`` (en-US)."""
    from playwright.sync_api import expect

    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-US", timezone_id=zone
    )
    context.clock.install(time=clock)
    page = context.new_page()
    page.goto(server.url + "login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password_for(user))
    page.click("button[type=submit]")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    return page


def test_day_separators_follow_history_the_clock_and_live_messages(browser, server):
    """Separators name each local day; older pages move them; midnight relabels; live adds one.

    The page's clock starts at 23:58 local on the day before the real one (the
    zone is picked so that real time is just past local midnight). History:
    ten messages from three days ago, fifty from 22:00 yesterday-of-the-page,
    one from 23:55. Then the clock passes midnight and Bob posts live.
    """
    from playwright.sync_api import expect

    now = datetime.now(UTC)
    zone = zone_just_past_midnight(now)
    local = ZoneInfo(zone)
    midnight = now.astimezone(local).replace(hour=0, minute=0, second=0, microsecond=0)
    evening = midnight - timedelta(days=1) + timedelta(hours=22)  # 22:00 the day before
    long_ago = midnight - timedelta(days=3) + timedelta(hours=9)
    room = server.create_room("Days")
    server.testkit("post", room_id=room, texts=[f"day {i}" for i in range(1, 62)], username="bob")
    times = {str(i): long_ago + timedelta(minutes=i) for i in range(1, 11)}
    times |= {str(11 + k): evening + timedelta(minutes=k) for k in range(50)}
    times["61"] = midnight - timedelta(minutes=5)
    iso = {seq: moment.isoformat() for seq, moment in times.items()}
    server.testkit("date-messages", room_id=room, times=iso)

    alice = open_at(browser, server, "alice", clock=midnight - timedelta(minutes=2), zone=zone)
    join(alice, room)
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    separators = pane.locator(".day-separator")
    shown = messages(alice, room)
    expect(shown.first).to_have_attribute("data-seq", "12")
    expect(separators).to_have_count(1)
    expect(separators).to_have_text("Today")  # the page still thinks it is the evening before
    newest = shown.last.locator("time")
    expect(newest).to_have_text("3 minutes ago")
    utc = times["61"].astimezone(UTC)
    expect(newest).to_have_attribute("datetime", f"{utc:%Y-%m-%dT%H:%M:%S}.000Z")
    title = newest.get_attribute("title")
    assert str(times["61"].year) in title and f"{times['61'].day}" in title, title
    older = shown.nth(48).locator("time")  # seq 60, 22:49: over an hour ago, a clock time
    assert plain(older.inner_text()) == clock_text(times["60"])

    # Older history is prepended: its day gets a separator, "Today" moves up to seq 11.
    pane.locator(".messages").evaluate("el => { el.scrollTop = 0; }")  # reading up pages back
    expect(shown.first).to_have_attribute("data-seq", "1")
    expect(separators).to_have_count(2)
    day = long_ago
    year = f", {day.year}" if day.year != midnight.year else ""  # only another year's days say it
    expect(separators.first).to_have_text(f"{day:%A}, {day:%B} {day.day}{year}")
    order = pane.locator(".day-separator, .message[data-seq]").evaluate_all(
        "els => els.map(e => e.dataset.seq || e.textContent)"
    )
    assert order.index("Today") == order.index("10") + 1 == order.index("11") - 1, order
    assert order[0] != "Today" and order[1] == "1", order

    # The clock passes midnight (a laptop lid opened): the one timer relabels the days.
    ahead = int(time.time() * 1000) - alice.evaluate("Date.now()") + 1000
    alice.clock.fast_forward(ahead)
    expect(separators.nth(1)).to_have_text("Yesterday")
    expect(newest).not_to_have_text("3 minutes ago")
    # Relabelled: "N minutes ago", N from when the test runs; past an hour after it (real time
    # in the last minutes of its local hour 00), the message's clock time.
    at = re.escape(clock_text(times["61"]))
    expect(newest).to_have_text(re.compile(rf"^(\d+ minutes ago|{at})$"))

    # A live message after midnight starts a new day.
    bob = open_chat(browser, server, "bob")
    join(bob, room)
    say(bob, room, "good morning")
    expect(shown.last.locator(".body")).to_have_text("good morning")
    expect(separators).to_have_count(3)
    expect(separators.last).to_have_text("Today")
    expect(shown.last.locator("time")).to_have_text("just now")
    last_two = pane.locator(".day-separator, .message[data-seq]").evaluate_all(
        "els => els.slice(-2).map(e => e.dataset.seq || e.textContent)"
    )
    assert last_two == ["Today", "62"], last_two
    say(bob, room, LONG_TEXT)
    expect(shown.last.locator(".show-more")).to_have_text("Show more")
    pane.locator(".messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(pane.locator(".new-messages")).to_be_hidden()
    shoot(alice, "timeline.png")
    alice.context.close()
    bob.context.close()


def test_long_messages_fold_and_unfold_by_keyboard(browser, server):
    """A long message shows a few lines and "Show more"; Enter and Space toggle it."""
    from playwright.sync_api import expect

    room = server.rooms["Long"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    say(alice, room, "a short line")
    say(alice, room, LONG_TEXT)
    say(alice, room, "x" * 450)  # long, but four lines at this width: nothing to unfold
    expect(messages(alice, room)).to_have_count(3)
    short, long, wide = (messages(alice, room).nth(i) for i in range(3))
    expect(short.locator(".show-more")).to_have_count(0)
    toggle = long.locator(".show-more")
    body = long.locator(".body")
    expect(toggle).to_have_text("Show more")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_attribute("aria-controls", body.get_attribute("id"))
    clipped = "b => b.scrollHeight > b.clientHeight + 1"
    assert body.evaluate(clipped), "the long body should be cut to a few lines"
    expect(wide.locator(".show-more")).to_be_hidden()

    toggle.focus()
    alice.keyboard.press("Enter")
    expect(toggle).to_have_text("Show less")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    assert not body.evaluate(clipped)
    expect(body).to_contain_text("line 24 of a long report")
    alice.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert body.evaluate(clipped)
    alice.context.close()


def test_www_and_http_links_become_safe_links(browser, server):
    """www. names link to https://, URLs keep theirs; javascript: and "www." alone stay text."""
    from playwright.sync_api import expect

    room = server.rooms["Links"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    text = (
        "see www.example.org/docs, http://example.com/a?b=1 and javascript:alert(1) "
        "or www. or awww.nope.test"
    )
    say(alice, room, text)
    body = messages(alice, room).last.locator(".body")
    expect(body).to_have_text(text)
    links = body.locator("a")
    expect(links).to_have_count(2)
    expect(links.first).to_have_text("www.example.org/docs")
    expect(links.first).to_have_attribute("href", "https://www.example.org/docs")
    expect(links.last).to_have_attribute("href", "http://example.com/a?b=1")
    for link in (links.first, links.last):
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    assert body.locator("a[href^='javascript']").count() == 0
    alice.context.close()
