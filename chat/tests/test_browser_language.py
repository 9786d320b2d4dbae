"""The language picker in a real browser: by keyboard, on the login page and in the top bar."""

import pytest

from chat.tests.test_browser_a11y import violations
from chat.tests.test_browser_ui import join, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    """A real server with alice and one room."""
    live = LiveServer().prepare()
    live.rooms = live.seed(users=["alice"], rooms=["General"]).rooms
    live.start()
    yield live
    live.stop()


def tab_to(page, selector: str, *, most: int = 10) -> None:
    """Press Tab until ``selector`` has the focus (at most ``most`` times)."""
    for _ in range(most):
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_user_switches_to_german_and_back(browser, server):
    """Tab to the picker, pick Deutsch, Enter: login and chat are German (axe-clean); then back."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.goto(server.url + "login/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.focus("#id_password")
    tab_to(page, "#language-login")
    page.keyboard.press("ArrowDown")  # English -> Deutsch
    expect(page.locator("#language-login")).to_have_value("de")
    page.keyboard.press("Tab")
    expect(page.locator(".language-picker button")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator(".login-lead")).to_have_text("Melde dich an, um mitzureden.")
    expect(page.get_by_label("Benutzername")).to_be_visible()
    assert violations(page) == []
    shoot(page, "login-german.png")

    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pw-1234")
    page.get_by_role("button", name="Anmelden").click()
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#rooms-heading")).to_have_text("Räume")
    expect(page.get_by_role("button", name="Abmelden")).to_be_visible()
    picker = page.get_by_label("Sprache")
    expect(picker).to_have_value("de")
    join(page, server.rooms["General"])
    assert violations(page) == []
    shoot(page, "chat-german-picked.png")  # chat-german.png: test_browser_i18n

    tab_to(page, "#language-topbar", most=40)
    page.keyboard.press("ArrowUp")  # Deutsch -> English
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_label("Language")).to_have_value("en")
    context.close()
