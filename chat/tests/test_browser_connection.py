"""The chat page's sending and connection: in-order sends under the rate limit, one connection
state, a quick reconnect, a heartbeat that notices a connection cut for real (a TCP proxy), and
a server restart (close 1012) that the page rides out with nothing lost or shown twice."""

import re

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say, shoot
from multichat_client import RestClient
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

MAX_LENGTH = 40


@pytest.fixture(scope="module")
def server():
    """A real server: two sends at once then one a second, short messages, a 1 s heartbeat."""
    live = LiveServer(
        extra_env={
            "CHAT_SEND_RATE": "1",
            "CHAT_SEND_BURST": "2",
            "CHAT_MESSAGE_MAX_LENGTH": str(MAX_LENGTH),
            "CHAT_HEARTBEAT_SECONDS": "1",
            "CHAT_HEARTBEAT_TIMEOUT_SECONDS": "1.5",
        }
    ).prepare()
    seeded = live.seed(users=["alice", "bob"], rooms=["General", "Random", "Quiet"], tokens=["bob"])
    live.rooms, live.tokens = seeded.rooms, seeded.tokens
    live.start()
    yield live
    live.stop()


def texts(page, room_id: int) -> list[str]:
    """The bodies of the stored messages shown in a room, top to bottom."""
    return messages(page, room_id).locator(".body").all_inner_texts()


def test_sends_refused_for_the_rate_limit_go_out_later_in_the_order_written(browser, server):
    """Six quick messages, two allowed at once: the rest wait, shown pending, then go in order."""
    from playwright.sync_api import expect

    room = server.rooms["General"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    written = [f"quick {i}" for i in range(6)]
    for text in written:
        say(alice, room, text)
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    waiting = pane.locator(".message.pending .pending-status", has_text="Sending too fast")
    expect(waiting.first).to_be_visible()
    pending = pane.locator(".message.pending .body").all_inner_texts()
    assert pending == written[len(written) - len(pending) :], pending  # in the order written
    shoot(alice, "send-rate-limited.png")
    for page in (alice, bob):
        expect(messages(page, room)).to_have_count(6, timeout=15_000)
        assert texts(page, room) == written
    expect(pane.locator(".message.pending")).to_have_count(0)
    expect(pane.locator(".send-error")).to_have_count(0)
    alice.context.close()
    bob.context.close()


def test_one_connection_state_in_the_top_bar_and_pane_errors_clear(browser, server, proxy):
    """Cut: only the top bar says reconnecting, no pane "Offline"; stale errors go away."""
    from playwright.sync_api import expect

    room = server.rooms["Random"]
    alice = open_chat(browser, proxy, "alice")  # page and socket go through the proxy
    join(alice, room)
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    box = pane.locator(".composer-input")
    box.fill("x" * (MAX_LENGTH + 5))
    box.press("Enter")
    error = pane.locator(".pane-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"at most {MAX_LENGTH} characters")
    box.fill("x" * MAX_LENGTH)  # short enough now: the error no longer applies
    expect(error).to_be_hidden()
    box.press("Enter")
    expect(messages(alice, room).last.locator(".body")).to_have_text("x" * MAX_LENGTH)

    proxy.cut("refuse")
    state = alice.locator("#conn-state")
    expect(state).to_have_attribute("data-state", "reconnecting")
    expect(pane).to_have_attribute("data-state", "disconnected")
    expect(pane.locator(".pane-state")).to_have_text("")  # said once, in the top bar
    expect(alice.locator("text=Offline")).to_have_count(0)
    shoot(alice, "connection-lost.png")
    proxy.restore()
    expect(state).to_have_attribute("data-state", "connected", timeout=10_000)
    expect(pane).to_have_attribute("data-state", "joined")
    alice.context.close()


def test_the_page_reconnects_at_once_when_shown_again(browser, server, proxy):
    """Backoff: first retry under a second, capped at a few; page shown again: retry at once."""
    from playwright.sync_api import expect

    alice = open_chat(browser, proxy, "alice")  # page and socket go through the proxy
    source = alice.locator("script[type=module]").get_attribute("src")
    first, capped = alice.evaluate(
        """async (src) => {
          const url = new URL("connection.js", new URL(src, location.href));
          const { backoffDelay } = await import(url);
          return [backoffDelay(0, () => 0.999), backoffDelay(30, () => 0.999)];
        }""",
        source,
    )
    assert first < 1000
    assert capped <= 10_000
    proxy.cut("refuse")
    state = alice.locator("#conn-state")
    # Wait until a retry is over two seconds away, then bring the server back and show the page.
    expect(state).to_have_text(re.compile(r"Reconnecting in [3-9] s"), timeout=30_000)
    proxy.restore()
    alice.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(state).to_have_attribute("data-state", "connected", timeout=1_500)
    alice.context.close()


def test_a_silent_connection_is_noticed_by_the_heartbeat_and_nothing_is_lost(
    browser, server, proxy
):
    """Blackholed (no FIN, no answer): the page notices, reconnects, shows every message once."""
    from playwright.sync_api import expect

    room = server.rooms["Quiet"]
    alice = open_chat(browser, proxy, "alice")  # page and socket go through the proxy
    join(alice, room)
    say(alice, room, "before the cut")
    expect(messages(alice, room).last.locator(".body")).to_have_text("before the cut")
    state = alice.locator("#conn-state")
    expect(state).to_have_attribute("data-state", "connected")

    proxy.cut("blackhole")  # the socket stays open on the page's side, and silent
    say(alice, room, "typed into the void")
    RestClient(server.url, server.tokens["bob"]).post(room, "while alice was away")
    expect(state).not_to_have_attribute("data-state", "connected", timeout=8_000)
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    expect(pane.locator(".message.pending")).to_have_count(1)
    proxy.restore()

    expect(state).to_have_attribute("data-state", "connected", timeout=15_000)
    expect(pane.locator(".message.pending")).to_have_count(0, timeout=10_000)
    expected = ["before the cut", "while alice was away", "typed into the void"]
    expect(messages(alice, room)).to_have_count(3)
    assert texts(alice, room) == expected
    seqs = messages(alice, room).evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == [1, 2, 3]
    stored = RestClient(server.url, server.tokens["bob"]).history(room)
    assert [m["message"] for m in stored["messages"]] == expected
    alice.context.close()


def test_the_page_resumes_after_the_server_restarts_with_1012_and_loses_nothing(browser):
    """SIGTERM: the page waits a random part of 5 s (not the 1013 pause), resumes with since."""
    from playwright.sync_api import expect

    first = LiveServer(extra_env={"SHUTDOWN_TIMEOUT": "5"}).prepare()
    seeded = first.seed(users=["alice"], rooms=["Deploys"], tokens=["alice"])
    room = seeded.rooms["Deploys"]
    first.start()
    servers = [first]
    try:
        alice = open_chat(browser, first, "alice")
        source = alice.locator("script[type=module]").get_attribute("src")
        spread = alice.evaluate(
            """async (src) => {
              const url = new URL("connection.js", new URL(src, location.href));
              const { restartDelay } = await import(url);
              const named = "server restarting: reconnect within 20 s and resume with since";
              return [restartDelay("", () => 0), restartDelay("", () => 0.999),
                      restartDelay(named, () => 0.5), restartDelay(named, () => 0.999)];
            }""",
            source,
        )
        assert spread == [0, 4995, 10_000, 19_980]  # uniform over the window the reason names
        join(alice, room)
        say(alice, room, "before the restart")
        expect(messages(alice, room).last.locator(".body")).to_have_text("before the restart")
        state = alice.locator("#conn-state")

        first.terminate()
        assert first.process is not None and first.process.wait(timeout=10) == 0
        expect(state).to_have_attribute("data-state", "reconnecting")  # not "unavailable"
        second = first.successor().start()
        servers.append(second)
        RestClient(second.url, seeded.tokens["alice"]).post(room, "while the page was away")
        expect(state).to_have_attribute("data-state", "connected", timeout=20_000)
        say(alice, room, "after the restart")
        expected = ["before the restart", "while the page was away", "after the restart"]
        expect(messages(alice, room)).to_have_count(3, timeout=10_000)
        assert texts(alice, room) == expected
        seqs = messages(alice, room).evaluate_all("els => els.map(e => Number(e.dataset.seq))")
        assert seqs == [1, 2, 3]
        alice.context.close()
    finally:
        for each in servers:
            each.stop()
