"""deploy/nginx.conf for real: Debian's nginx in front of a real server.

The socket upgrade passes through, and the server sees each client's own
address (login throttling and sign-up limits count by it), one that a
client cannot forge with an X-Forwarded-For of its own, even though the
image trusts forwarded headers from anywhere (FORWARDED_ALLOW_IPS=*).
Clients come from different loopback addresses (127.0.0.2, ...).
"""

import http.client
import json
import re
import urllib.parse
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect

from testkit.live import LiveServer, is_message, join, next_frame, password_for
from testkit.nginx import MISSING, NGINX, nginx_in_front

pytestmark = pytest.mark.once


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[LiveServer, str, int]]:
    """A server as the image runs it, behind deploy/nginx.conf: (server, nginx URL, room)."""
    if not NGINX.exists():
        pytest.skip(MISSING)
    live = LiveServer(extra_env={"FORWARDED_ALLOW_IPS": "*"}).prepare()
    room = live.seed(users=["alice", "bob"], rooms=["General"]).rooms["General"]
    with nginx_in_front(f"127.0.0.1:{live.port}") as url:
        # nginx passes Host without the port: the page's origin is the proxy's URL.
        live.env["CSRF_TRUSTED_ORIGINS"] = url.rstrip("/")
        live.start()
        try:
            yield live, url, room
        finally:
            live.stop()


class Visitor:
    """A browser at one loopback address, talking to ``url`` with cookies."""

    def __init__(self, url: str, address: str, headers: dict[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.address, self.headers, self.cookies = address, headers or {}, {}
        self.last_request_id: str | None = None

    def request(self, method: str, path: str, form: dict[str, str] | None = None):
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=10, source_address=(self.address, 0)
        )
        headers = {**self.headers, "Cookie": self.cookie}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        self.last_request_id = response.headers.get("X-Request-ID")
        return response.status, text

    @property
    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def log_in(self, username: str, password: str) -> int:
        """Post the login form; 302 is logged in, 200 refused, 429 locked out."""
        _, page = self.request("GET", "/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None, page[:500]
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
        return self.request("POST", "/login/", form)[0]


async def test_a_socket_through_nginx_joins_posts_and_receives(proxied):
    """The upgrade and the socket's cookie and origin pass through nginx."""
    _, url, room = proxied
    visitor = Visitor(url, "127.0.0.1", headers={"X-Request-ID": "chosen-by-the-client"})
    assert visitor.log_in("alice", password_for("alice")) == 302
    # nginx names each request ($request_id, 32 hex digits) and the app logs and echoes that id.
    assert re.fullmatch(r"[0-9a-f]{32}", visitor.last_request_id or ""), visitor.last_request_id
    ws_url = url.replace("http://", "ws://") + "chat/stream/"
    headers = {"Origin": url.rstrip("/"), "Cookie": visitor.cookie}
    async with connect(ws_url, additional_headers=headers) as ws:
        assert "join" in await join(ws, room)
        await ws.send(json.dumps({"command": "send", "room": room, "message": "via nginx"}))
        frame = await next_frame(ws, is_message)
        assert (frame["username"], frame["message"]) == ("alice", "via nginx")


def test_the_server_counts_failed_logins_by_the_real_client_address(proxied, settings):
    """Failures from one address lock that address out, not everyone behind nginx."""
    url = proxied[1]
    attacker = Visitor(url, "127.0.0.2")
    statuses = [attacker.log_in("bob", "wrong") for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses[-1] == 429
    assert attacker.log_in("bob", password_for("bob")) == 429
    # Without the real address the server would see nginx's for both, and lock bob out here too.
    assert Visitor(url, "127.0.0.3").log_in("bob", password_for("bob")) == 302


def test_a_forged_forwarded_for_header_does_not_move_the_blame(proxied, settings):
    """A client's own X-Forwarded-For is replaced by nginx, not trusted."""
    url = proxied[1]
    forger = Visitor(url, "127.0.0.4", headers={"X-Forwarded-For": "127.0.0.5"})
    for _ in range(settings.AXES_FAILURE_LIMIT):
        forger.log_in("alice", "wrong")
    assert Visitor(url, "127.0.0.4").log_in("alice", password_for("alice")) == 429
    assert Visitor(url, "127.0.0.5").log_in("alice", password_for("alice")) == 302


def test_metrics_are_not_served_through_the_proxy(proxied):
    """/metrics is for Prometheus on the inside: nginx answers 404 for it, whoever asks."""
    status, _ = Visitor(proxied[1], "127.0.0.1").request("GET", "/metrics")
    assert status == 404
