"""Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).

scripts/test calls ``ensure_chromium`` before pytest: it installs Debian's
chromium package when it is missing and this is root with apt-get, or says
what to install. The browser fixture only looks (``find_chromium``) and skips
with ``MISSING`` when there is none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

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
    found = find_chromium()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(MISSING, file=sys.stderr, flush=True)
        return None
    print(f"Chromium is missing: installing Debian's {PACKAGE} package", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-qq", "-o", "Dpkg::Use-Pty=0", "-o", "DPkg::Lock::Timeout=300"]
    for command in ([*apt, "update"], [*apt, "install", "-y", PACKAGE]):
        # No questions (no stdin in CI); dpkg's progress goes nowhere, apt's errors are shown.
        done = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False
        )
        if done.returncode:
            break
    found = find_chromium()
    if found is None:
        print(f"Installing {PACKAGE} failed: {MISSING}", file=sys.stderr, flush=True)
    return found


@contextlib.contextmanager
def launched(executable: str) -> Iterator[Browser]:
    """A headless Chromium from ``executable``, driven by Playwright; closed afterwards."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
