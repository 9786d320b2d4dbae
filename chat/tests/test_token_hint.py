"""The token page's command-line hint works as written: it is run, copied from the page."""

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import ROOT
from testkit.live import LiveServer

HINT = re.compile(r'<pre class="hint-use"[^>]*><code>(.*?)</code></pre>', re.S)
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(scope="module")
def server():
    """A real server with alice and a room she may enter."""
    live = LiveServer().prepare()
    live.seed(users=["alice"], rooms=["Hinted room"])
    live.start()
    yield live
    live.stop()


def created_token_page(server: LiveServer) -> str:
    """Log in as alice and create a token through the tokens page; return that page's HTML."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    cookie = server.login_cookie("alice", "alice-pw-1234")
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    opener.addheaders = [("Cookie", cookie)]
    page = opener.open(server.url + "tokens/", timeout=10).read().decode()
    found = CSRF.search(page)
    assert found, page[:2000]
    data = urllib.parse.urlencode({"name": "cli", "csrfmiddlewaretoken": found.group(1)}).encode()
    request = urllib.request.Request(
        server.url + "tokens/new/", data=data, headers={"Referer": server.url + "tokens/"}
    )
    return opener.open(request, timeout=10).read().decode()


def without_the_venv(path: str) -> str:
    """PATH without this test run's virtualenv: the hint promises a plain Python 3.11 will do."""
    venv = Path(sys.prefix).resolve()
    kept = [p for p in path.split(os.pathsep) if p and venv not in Path(p).resolve().parents]
    return os.pathsep.join(kept)


def test_the_token_pages_command_line_hint_runs_as_written(server, tmp_path):
    """Copy the hint's commands from the page, run them in a checkout: they list alice's room."""
    found = HINT.search(created_token_page(server))
    assert found, "the page shows no command-line hint"
    commands = html.unescape(found.group(1))
    assert "export MULTICHAT_URL=" in commands  # what the CLI reads (multichat_client/config.py)
    path = without_the_venv(os.environ.get("PATH", ""))
    if shutil.which("python3", path=path) is None:
        pytest.skip("no python3 outside the virtualenv to run the hint with")
    env = {"PATH": path, "HOME": str(tmp_path), "MULTICHAT_CONFIG": str(tmp_path / "none.toml")}
    done = subprocess.run(
        ["bash", "-e", "-c", commands],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (commands, done.stdout, done.stderr)
    assert "Hinted room" in done.stdout, done.stdout
