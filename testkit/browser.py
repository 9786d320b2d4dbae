"""Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).

scripts/test calls ``ensure_chromium`` before pytest: it installs Debian's
chromium package when it is missing and this is root with apt-get, or says
what to install. The browser fixture only looks (``find_chromium``) and skips
with ``MISSING`` when there is none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from testkit.debian import ensure_package

PACKAGE = "chromium"  # Debian's package
CHROMIUM = Path("/usr/bin/chromium")  # where it puts the browser
MISSING = (
    "no Chromium: install Debian's chromium package (as root: apt-get install chromium) "
    "to run the browser tests"
)
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    # English pages unless a test's context asks for a locale, whatever this machine's LANG says.
    "--lang=en-US",
]  # fmt: skip


def find_chromium() -> str | None:
    """The path of Debian's Chromium, or None if it is not installed."""
    return str(CHROMIUM) if CHROMIUM.exists() else None


def ensure_chromium() -> str | None:
    """Find Chromium, installing Debian's package first when it is missing and we can."""
    return ensure_package(PACKAGE, CHROMIUM, MISSING)


@contextlib.contextmanager
def launched(executable: str) -> Iterator[Browser]:
    """A headless Chromium from ``executable``, driven by Playwright; closed afterwards."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
