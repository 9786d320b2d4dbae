"""deploy/nginx.conf for real: Debian's nginx in front of a real server.

The socket upgrade passes through, and the server sees each client's own
address (login throttling and sign-up limits count by it), one that a
client cannot forge with an X-Forwarded-For of its own, even though the
image trusts forwarded headers from anywhere (FORWARDED_ALLOW_IPS=*).
Clients come from different loopback addresses (127.0.0.2, ...). Attachments
go up through nginx's own body limit for uploads and come back from nginx
itself (X-Accel-Redirect), only after the app's access check.
"""

import http.client
import json
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

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
    # As compose runs it: nginx sends attachments from the app's files directory.
    live = LiveServer(
        extra_env={"FORWARDED_ALLOW_IPS": "*", "CHAT_FILES_ACCEL_REDIRECT": "/_files/"}
    ).prepare()
    room = live.seed(users=["alice", "bob"], rooms=["General"]).rooms["General"]
    files = Path(live.data_dir) / "files"
    files.mkdir(exist_ok=True)
    with nginx_in_front(f"127.0.0.1:{live.port}", files=files) as url:
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


def fetch(
    base: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request to ``base``: status, headers (lower-case names), body."""
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def multipart(name: str, data: bytes) -> tuple[str, bytes]:
    """A multipart/form-data body with the one field ``file``: (its content type, body)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return f"multipart/form-data; boundary={boundary}", (
        head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    )


def test_attachments_go_up_and_come_back_through_nginx_only_to_who_may_see_them(proxied):
    """An upload over nginx's 1 MiB default passes on /api/uploads; a member gets the bytes
    from nginx itself (the app answered with an empty body and X-Accel-Redirect), with the
    app's headers; a non-member gets 404; /_files/ asked for from outside is 404."""
    live, url, room = proxied
    seeded = live.seed(staff=["sam"], staff_rooms=["Staff"], tokens=["alice", "sam"])
    staff_room = seeded.rooms["Staff"]
    text = ("a line of notes\n" * 131072).encode()  # 2 MiB of UTF-8 text: text/plain
    assert len(text) > 1024 * 1024

    def upload(user: str, name: str, data: bytes) -> dict:
        content_type, body = multipart(name, data)
        headers = {"Authorization": f"Bearer {seeded.tokens[user]}", "Content-Type": content_type}
        status, _, answer = fetch(url, "POST", "/api/uploads", headers, body)
        assert status == 201, answer[:500]
        return json.loads(answer)

    def post(user: str, room_id: int, file_id: str) -> None:
        headers = {
            "Authorization": f"Bearer {seeded.tokens[user]}",
            "Content-Type": "application/json",
        }
        body = json.dumps({"message": "", "files": [file_id]}).encode()
        status, _, answer = fetch(url, "POST", f"/api/rooms/{room_id}/messages", headers, body)
        assert status == 201, answer[:500]

    notes = upload("alice", "notes.txt", text)
    post("alice", room, notes["id"])
    secret = upload("sam", "secret.txt", b"for staff only\n")
    post("sam", staff_room, secret["id"])
    bob = {"Cookie": live.login_cookie("bob", password_for("bob"))}

    # The app itself checks and hands over: an empty body and where nginx finds the file.
    status, headers, body = fetch(live.url, "GET", notes["url"], bob)
    assert status == 200 and body == b""
    accel = headers["x-accel-redirect"]
    assert accel.startswith("/_files/files/") and accel.endswith("/notes.txt")
    # Through nginx the member gets the bytes, which only nginx can have sent.
    status, headers, body = fetch(url, "GET", notes["url"], bob)
    assert status == 200
    assert body == text
    assert "x-accel-redirect" not in headers
    assert headers["content-disposition"] == "attachment; filename*=UTF-8''notes.txt"
    assert headers["content-type"].startswith("text/plain")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert headers["cache-control"] == "private, max-age=3600"

    # A name that says HTML does not make nginx say so: the type is the app's sniffed one.
    page = upload("alice", "page.html", b"<b>hello</b>\n")
    assert page["type"] == "text/plain"
    post("alice", room, page["id"])
    status, headers, body = fetch(url, "GET", page["url"], bob)
    assert status == 200 and body == b"<b>hello</b>\n"
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-disposition"].startswith("attachment")

    # A non-member of the staff room (and anyone logged out) gets 404 and no bytes.
    for who in (bob, {}):
        status, headers, body = fetch(url, "GET", secret["url"], who)
        assert status == 404
        assert b"for staff only" not in body
    # The internal location is not reachable from outside, even naming the right file.
    status, _, body = fetch(url, "GET", "/_files/" + accel.removeprefix("/_files/"), bob)
    assert status == 404 and body != text
    secret_path = fetch(
        live.url, "GET", secret["url"], {"Cookie": live.login_cookie("sam", password_for("sam"))}
    )[1]["x-accel-redirect"]
    status, _, body = fetch(url, "GET", secret_path, {})
    assert status == 404 and b"for staff only" not in body


def test_nginx_refuses_an_upload_over_its_limit_before_reading_it(proxied):
    """A body declared over client_max_body_size on /api/uploads is refused at once (413),
    without nginx waiting for the body, so the app never sees it."""
    _, url, _ = proxied
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
    try:
        connection.putrequest("POST", "/api/uploads")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(27 * 1024 * 1024))
        connection.endheaders()  # and no body: nginx answers from the headers alone
        assert connection.getresponse().status == 413
    finally:
        connection.close()
