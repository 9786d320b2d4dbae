"""The chat embedded in another Django site, installed from the built wheel (docs/embedding.md).

The server's wheel and its locked requirements go into a fresh virtual environment beside a
copy of examples/hostsite (a plain site with its own email-login user model, login page and
base template), which migrates and runs under uvicorn on its own asgi.py with the chat
under /chat/. Then a real socket (session cookie and bearer token), the REST API, the admin
and a browser use it. No checkout is on the server's path.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from chat.tests.test_deploy import UV, build_server, fresh_venv, run, without_checkout
from multichat_client import ChatClient, Message
from testkit import ROOT
from testkit.live import LiveServer, next_frame

pytestmark = pytest.mark.once

EXAMPLE = ROOT / "examples" / "hostsite"
PASSWORD = "host-pw-1234"
# Run by the site's manage.py shell: its users (custom model), two rooms and a token.
SEED = """
import json
from accounts.models import User
from api.services import token_create
from chat.models import Room
ann = User.objects.create_user("ann@example.com", PASSWORD, full_name="Ann Host")
User.objects.create_superuser("boss@example.com", PASSWORD, full_name="Boss")
lobby = Room.objects.create(title="Lobby")
office = Room.objects.create(title="Back office", staff_only=True)
_, token = token_create(user=ann, name="tests")
print(json.dumps({"lobby": lobby.pk, "office": office.pk, "token": token}))
"""


@dataclass
class Host:
    """The running example site and what was seeded in it."""

    server: LiveServer
    lobby: int
    office: int
    token: str

    @property
    def url(self) -> str:
        """The site's base URL, ending in /."""
        return self.server.url


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> Host:
    """examples/hostsite with the wheel installed beside it, migrated, seeded and serving."""
    server_build = build_server(tmp_path_factory.mktemp("context"), tmp_path_factory.mktemp("dist"))
    where = tmp_path_factory.mktemp("embedded")
    bin_dir = fresh_venv(
        where / "venv", "--require-hashes", "--no-deps", "-r", str(server_build.requirements)
    )
    run([UV, "pip", "install", "--quiet", "--python", str(bin_dir / "python"), "--no-deps",
         str(server_build.wheel)], cwd=where)  # fmt: skip
    site = where / "hostsite"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("__pycache__", "var"))
    (where / "data").mkdir()
    live = LiveServer(
        data_dir=str(where / "data"),
        command=[
            str(bin_dir / "uvicorn"),
            "hostsite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--no-access-log",
        ],
        cwd=site,
    )
    live.env = without_checkout(
        {
            **{k: v for k, v in live.env.items() if not k.startswith(("CHAT_", "DATA_DIR"))},
            "DJANGO_SETTINGS_MODULE": "hostsite.settings",
            "HOSTSITE_DATA_DIR": str(where / "data"),
        }
    )
    python = str(bin_dir / "python")
    where_chat = run([python, "-c", "import chat; print(chat.__file__)"], cwd=site, env=live.env)
    assert Path(where_chat.strip()).is_relative_to(where / "venv"), where_chat
    checked = run([python, "manage.py", "check"], cwd=site, env=live.env)
    assert "no issues" in checked, checked
    run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=site, env=live.env)
    seeded = run(
        [python, "manage.py", "shell", "-c", f"PASSWORD = {PASSWORD!r}\n{SEED}"],
        cwd=site,
        env=live.env,
    )
    made = json.loads(seeded.strip().splitlines()[-1])
    live.start(timeout=60)
    yield Host(live, made["lobby"], made["office"], made["token"])
    live.stop()


def login(host: Host, email: str, path: str = "accounts/login/") -> dict[str, str]:
    """Sign in through the site's own login form; return its cookies."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(host.url + path, timeout=10).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert csrf, page[:2000]
    form = {"username": email, "password": PASSWORD, "csrfmiddlewaretoken": csrf.group(1)}
    request = urllib.request.Request(
        host.url + path,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Referer": host.url + path},
    )
    opener.open(request, timeout=10)
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, f"signing in as {email} failed"
    return cookies


def fetch(host: Host, path: str, **headers: str) -> tuple[int, str]:
    """GET ``path`` of the site; its status and body (errors included)."""
    request = urllib.request.Request(host.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_chat_page_lives_under_the_prefix_inside_the_sites_base_template(host):
    """/chat/ sends a visitor to the site's login page; signed in, it is the chat in the site's
    own base template, told where its socket and API are."""
    status, page = fetch(host, "chat/")
    assert status == 200 and "Sign in to the host site" in page  # redirected to LOGIN_URL
    cookies = login(host, "ann@example.com")
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    status, page = fetch(host, "chat/", Cookie=cookie)
    assert status == 200
    assert 'class="site-nav"' in page  # the host's base template
    config = json.loads(re.search(r'id="chat-config"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert (config["socketPath"], config["apiBase"]) == ("/chat/chat/stream/", "/chat/api/")
    assert config["profile"]["display_name"] == "Ann Host"  # the site's get_full_name
    status, page = fetch(host, "lounge/", Cookie=cookie)  # {% multichat %} in the site's page
    assert status == 200 and "The lounge" in page and 'id="chat-config"' in page
    status, page = fetch(host, "lounge/")
    assert status == 200 and 'href="/accounts/login/?next=%2Flounge%2F"' in page


def test_a_session_socket_joins_and_posts_as_the_sites_user(host):
    """A socket with the site's session cookie joins the lobby and its post comes back signed
    with the user's email (the model's USERNAME_FIELD); the staff-only room is refused."""
    cookies = login(host, "ann@example.com")

    async def talk() -> tuple[dict, dict]:
        headers = {
            "Origin": host.url.rstrip("/"),
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        }
        ws_url = host.url.replace("http://", "ws://") + "chat/chat/stream/"
        async with connect(ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"command": "join", "room": host.office}))
            refused = await next_frame(ws, lambda f: "error" in f, timeout=20)
            await ws.send(json.dumps({"command": "join", "room": host.lobby}))
            await next_frame(ws, lambda f: "join" in f, timeout=20)
            message = {"command": "send", "room": host.lobby, "message": "hello from the host"}
            await ws.send(json.dumps(message))
            posted = await next_frame(
                ws, lambda f: f.get("message") == "hello from the host", timeout=20
            )
            return refused, posted

    refused, posted = asyncio.run(talk())
    assert refused["error"] == "ROOM_ACCESS_DENIED", refused
    assert posted["username"] == "ann@example.com" and posted["seq"] >= 1


def test_a_token_drives_the_rest_api_and_the_socket_under_the_prefix(host):
    """The bearer token lists the rooms at /chat/api/rooms (no staff-only one) and posts over
    the socket with the Python client."""
    status, body = fetch(host, "chat/api/rooms", Authorization=f"Bearer {host.token}")
    assert status == 200, body
    titles = {room["title"] for room in json.loads(body)["rooms"]}
    assert "Back office" not in titles
    status, body = fetch(host, "chat/api/me", Authorization=f"Bearer {host.token}")
    assert (status, json.loads(body)["username"]) == (200, "ann@example.com"), body

    async def round_trip() -> Message:
        async with ChatClient(host.url + "chat/", host.token) as chat:
            await chat.join(host.lobby)
            await chat.send(host.lobby, "sent with a token")
            async with asyncio.timeout(20):
                async for event in chat:
                    if isinstance(event, Message) and event.message == "sent with a token":
                        return event
        raise AssertionError("the client stopped before its post came back")

    assert asyncio.run(round_trip()).username == "ann@example.com"


def test_files_upload_post_and_serve_under_the_prefix_from_the_default_storage(host):
    """A site without a "chat_files" storage keeps attachments in its default one; the upload,
    the post and the file's URL all live under /chat/."""
    auth = {"Authorization": f"Bearer {host.token}"}
    boundary = "hostsiteboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="n.txt"\r\n\r\n'
        f"hello host\r\n--{boundary}--\r\n"
    ).encode()
    request = urllib.request.Request(
        host.url + "chat/api/uploads",
        data=body,
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        info = json.loads(response.read())
    assert info["url"] == f"/chat/files/{info['id']}/n.txt"
    posted = urllib.request.Request(
        host.url + f"chat/api/rooms/{host.lobby}/messages",
        data=json.dumps({"message": "", "files": [info["id"]]}).encode(),
        headers={**auth, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(posted, timeout=10) as response:
        assert json.loads(response.read())["files"] == [info]
    assert fetch(host, info["url"].lstrip("/"), **auth) == (200, "hello host")
    assert fetch(host, info["url"].lstrip("/"))[0] == 404


def test_the_admin_lists_the_chats_models_for_the_sites_superuser(host):
    """The admin's login page loads; the site's superuser sees the chat's rooms and tokens."""
    status, page = fetch(host, "admin/login/")
    assert status == 200 and 'name="password"' in page
    cookies = login(host, "boss@example.com", path="admin/login/")
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    status, page = fetch(host, "admin/chat/room/", Cookie=cookie)
    assert status == 200 and "Back office" in page
    status, page = fetch(host, "admin/api/apitoken/?q=ann", Cookie=cookie)
    assert status == 200 and "ann@example.com" in page  # searched by the user's email


@pytest.mark.browser
def test_a_browser_posts_from_the_chat_page_under_the_prefix(host, browser):
    """Signed in through the site's login page, the chat under /chat/ connects, joins the lobby
    and shows a post sent from it; the client mounted in the site's own page connects too."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(host.url + "chat/")
    page.fill("#id_username", "ann@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("form.host-login button[type=submit]")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    page.click(f".room-toggle[data-room-id='{host.lobby}']")
    pane = page.locator(f".room-pane[data-room-id='{host.lobby}']")
    expect(pane).to_have_attribute("data-state", "joined")
    pane.locator(".composer-input").fill("typed in the host's page")
    pane.locator(".composer-input").press("Enter")
    posted = pane.locator(".message[data-seq]:not(.pending)").last
    expect(posted.locator(".body")).to_have_text("typed in the host's page")
    page.goto(host.url + "lounge/")  # the client mounted by {% multichat %} in the site's page
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    expect(page.locator(f".room-toggle[data-room-id='{host.lobby}']")).to_be_visible()
    context.close()
