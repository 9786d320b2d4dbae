"""The chat page while the database is down: "server unavailable, retrying", then recovery."""

import re
import time

import pytest

from chat.tests.test_browser_ui import shoot
from chat.tests.test_db_outage import outage  # noqa: F401 (the outage fixture)
from multichat_client import RestClient
from testkit.live import healthz
from testkit.proxy import TcpProxy
from testkit.servers import postgres_base_url

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_base_url() is None, reason="needs DATABASE_URL on PostgreSQL"),
]


def test_page_shows_server_unavailable_on_1013_and_recovers(browser, outage):  # noqa: F811
    """Close 1013: the page says the server is unavailable, retries after a pause, resumes."""
    from playwright.sync_api import expect

    front = TcpProxy("127.0.0.1", outage.port).start()  # lets the test drop the page's socket
    base = f"http://127.0.0.1:{front.port}/"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(base + "login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice-pw-1234")
        page.click("button[type=submit]")
        state = page.locator("#conn-state")
        expect(state).to_have_attribute("data-state", "connected")
        page.click(f".room-toggle[data-room-id='{outage.room_id}']")
        pane = page.locator(f".room-pane[data-room-id='{outage.room_id}']")
        expect(pane).to_have_attribute("data-state", "joined")

        outage.proxy.cut("blackhole")
        front.cut("refuse")  # the socket drops; its reconnects meet the outage
        front.restore()
        expect(state).to_have_attribute("data-state", "unavailable", timeout=30_000)
        expect(state).to_have_text(re.compile(r"Server unavailable, retrying"))
        expect(page.locator(".notice")).to_have_count(0)  # the state says it; no pile of notices
        shoot(page, "database-down.png")

        outage.proxy.restore()
        deadline = time.monotonic() + 30
        while healthz(outage.url, 30)[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        expect(state).to_have_attribute("data-state", "connected", timeout=30_000)
        expect(pane).to_have_attribute("data-state", "joined", timeout=10_000)
        RestClient(outage.url, outage.token).post(outage.room_id, "the database is back")
        expect(pane.locator(".message[data-seq] .body").last).to_have_text(
            "the database is back", timeout=10_000
        )
    finally:
        outage.proxy.restore()
        context.close()
        front.stop()
