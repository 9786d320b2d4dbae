"""Structured logs (LOG_FORMAT=json): one JSON object per line, with who it is about, no secrets.

The end-to-end tests read what a real server process printed (testkit.live
captures its stdout and stderr in one file), at LOG_LEVEL=DEBUG so that the
chattiest the server can be is what is checked for secrets.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from chat import logcontext
from config.logs import logging_config
from testkit.live import LiveServer, join, next_frame, open_ws, password_for

pytestmark = pytest.mark.timeout(300)

Line = dict[str, Any]


@pytest.fixture(scope="module")
def server():
    """A server logging JSON at DEBUG; ``ids``: user and room ids, ``token``: ann's token."""
    live = LiveServer(extra_env={"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}).prepare()
    names = ["ann", "bob"]
    calls: list[list[object]] = [
        *(["user", {"username": n, "password": password_for(n)}] for n in names),
        *(["room", {"title": t, "staff_only": False}] for t in ("Annex", "Bobbin")),
        ["room", {"title": "Staff", "staff_only": True}],
        ["token", {"username": "ann"}],
    ]
    ann, bob, annex, bobbin, staff, token = live.testkit("batch", calls=calls)
    live.ids = {"ann": ann, "bob": bob, "Annex": annex, "Bobbin": bobbin, "Staff": staff}
    live.token = token
    live.start()
    yield live
    live.stop()


def lines(server: LiveServer) -> list[Line]:
    """Every line the server printed, each parsed as one JSON object (asserts that they are)."""
    text = server.log_path.read_text(errors="replace")
    parsed = []
    for raw in text.splitlines():
        line = json.loads(raw)  # fails the test on any line that is not JSON
        assert isinstance(line, dict), raw
        parsed.append(line)
    return parsed


def wait_for_line(server: LiveServer, **fields: Any) -> Line:
    """The first log line that has all of ``fields`` (waits up to 30 s for it)."""
    deadline = time.monotonic() + 30
    while True:
        for line in lines(server):
            if all(line.get(k) == v for k, v in fields.items()):
                return line
        assert time.monotonic() < deadline, f"No line with {fields}:\n{server.log()}"
        time.sleep(0.1)


def get(server: LiveServer, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """GET ``path`` with ``headers``: the status and the response's headers."""
    request = urllib.request.Request(server.url + path.lstrip("/"), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_a_request_line_carries_the_request_id_its_response_echoes(server):
    """A sane X-Request-ID is kept, echoed and on the request's log line (a 404's warning)."""
    status, headers = get(server, "/no-such-page/", {"X-Request-ID": "edge-7f3a.1"})
    assert status == 404
    assert headers["X-Request-ID"] == "edge-7f3a.1"
    line = wait_for_line(server, request_id="edge-7f3a.1")
    assert line["logger"] == "django.request" and line["level"] == "WARNING"
    assert "/no-such-page/" in line["message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", line["time"])
    assert "socket_id" not in line and "user_id" not in line


def test_a_logged_in_request_line_names_the_user(server):
    """A request with a session cookie logs its user's id (and never the cookie)."""
    cookie = server.login_cookie("bob", password_for("bob"))
    status, _ = get(server, "/no-such-page/", {"Cookie": cookie, "X-Request-ID": "bob-404"})
    assert status == 404
    assert wait_for_line(server, request_id="bob-404")["user_id"] == server.ids["bob"]
    session = dict(part.split("=", 1) for part in cookie.split("; "))["sessionid"]
    assert session not in server.log_path.read_text()


def test_an_insane_or_missing_request_id_is_replaced_by_a_fresh_one(server):
    """An id that is too long or has odd characters is not used; none at all gets one too."""
    seen = set()
    for sent in ("x" * 65, "a b<script>", None):
        status, headers = get(server, "/no-such-page/", {"X-Request-ID": sent} if sent else {})
        assert status == 404
        echoed = headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{16}", echoed), echoed
        wait_for_line(server, request_id=echoed, logger="django.request")
        seen.add(echoed)
    assert len(seen) == 3


def test_a_rest_call_with_a_token_logs_the_user_and_never_the_token(server):
    """A bearer call's line names its user; no token (good or refused), no posted text is logged."""
    marker = "Rk4vMARK"
    post = urllib.request.Request(
        f"{server.url}api/rooms/{server.ids['Annex']}/messages",
        data=json.dumps({"message": marker}).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(post, timeout=10) as response:
        assert response.status == 201
    auth = {"Authorization": f"Bearer {server.token}", "X-Request-ID": "rest-missing-room"}
    status, _ = get(server, "/api/rooms/987654/messages", auth)
    assert status == 404
    line = wait_for_line(server, request_id="rest-missing-room")
    assert line["user_id"] == server.ids["ann"]
    wrong = server.token[:-4] + "zzzz"
    bad = {"Authorization": f"Bearer {wrong}", "X-Request-ID": "rest-bad-token"}
    assert get(server, "/api/rooms", bad)[0] == 401
    assert "user_id" not in wait_for_line(server, request_id="rest-bad-token")
    log = server.log_path.read_text()
    assert server.token not in log and wrong not in log and marker not in log


async def test_socket_lines_carry_socket_user_and_room_and_never_the_text(server):
    """Open, join, a refused join and close are logged with the socket's ids; the text is not."""
    marker = "Zq8xMARK"  # short: a trace of its frame would hold it whole, not elided
    ws = await open_ws(server, "ann")
    try:
        assert "join" in await join(ws, server.ids["Annex"])
        refused = await join(ws, server.ids["Staff"])
        assert refused["error"] == "ROOM_ACCESS_DENIED"
        await ws.send(json.dumps({"command": "send", "room": server.ids["Annex"],
                                  "message": marker, "ref": 1}))  # fmt: skip
        await next_frame(ws, lambda f: f.get("sent") == server.ids["Annex"])
    finally:
        await ws.close()
    user = server.ids["ann"]
    closed = await asyncio.to_thread(
        wait_for_line,
        server,
        logger="chat.consumers",
        user_id=user,
        message="Socket closed (code 1000)",
    )
    socket = closed["socket_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", socket)
    opened = wait_for_line(server, socket_id=socket, message="Socket opened")
    joined = wait_for_line(server, socket_id=socket, message="Joined the room")
    denied = wait_for_line(server, socket_id=socket, room=server.ids["Staff"])
    assert opened["user_id"] == joined["user_id"] == denied["user_id"] == user
    assert joined["room"] == server.ids["Annex"] and "room" not in closed
    assert "ROOM_ACCESS_DENIED" in denied["message"]
    log = server.log_path.read_text()
    assert marker not in log
    assert "sessionid=" not in log  # uvicorn's DEBUG handshake trace (the cookie) is dropped


async def test_two_concurrent_sockets_never_share_their_log_context(server):
    """Two users' sockets, commands interleaved: a line names only its own socket's user, rooms."""
    rooms = {"ann": server.ids["Annex"], "bob": server.ids["Bobbin"]}
    sockets = {name: await open_ws(server, name) for name in rooms}

    async def churn(name: str) -> None:
        ws = sockets[name]
        for _ in range(10):
            assert "join" in await join(ws, rooms[name])
            await ws.send(json.dumps({"command": "leave", "room": rooms[name]}))
            await next_frame(ws, lambda f: "leave" in f)

    try:
        await asyncio.gather(churn("ann"), churn("bob"))
    finally:
        for ws in sockets.values():
            await ws.close()
    for name in rooms:
        await asyncio.to_thread(
            wait_for_line, server, user_id=server.ids[name], message="Socket closed (code 1000)"
        )
    users: dict[str, set[int]] = {}
    rooms_seen: dict[str, set[int]] = {}
    for line in lines(server):
        if "socket_id" in line:
            users.setdefault(line["socket_id"], set()).add(line.get("user_id"))
            if "room" in line:
                rooms_seen.setdefault(line["socket_id"], set()).add(line["room"])
    mine = {name: [s for s, u in users.items() if u == {server.ids[name]}] for name in rooms}
    assert all(len(u) == 1 for u in users.values()), users
    for name, room in rooms.items():
        joins = [s for s in mine[name] if room in rooms_seen.get(s, set())]
        assert joins, f"no line of {name}'s socket names room {room}"
        other = rooms["bob" if name == "ann" else "ann"]
        assert all(other not in rooms_seen.get(s, set()) for s in mine[name])


def console_handler(stream: io.StringIO) -> logging.Handler:
    """The console handler that logging_config() describes, writing to ``stream``.

    Built with logging's own configurator, piece by piece, so that the test
    process's logging (pytest's capture) is left as it is.
    """
    config = logging_config()
    console = config["handlers"]["console"]
    configurator = logging.config.DictConfigurator(config)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        configurator.configure_formatter(config["formatters"][console["formatter"]])
    )
    for name in console["filters"]:
        handler.addFilter(configurator.configure_filter(config["filters"][name]))
    return handler


def log_one(handler: logging.Handler) -> None:
    """Log one warning through ``handler`` with a request context bound."""
    logger = logging.getLogger("multichat.test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with logcontext.bound(request_id="r1", user_id=5):
            logger.warning("Something %s", "happened")
    finally:
        logger.removeHandler(handler)


def test_plain_stays_the_default_format(monkeypatch):
    """Without LOG_FORMAT a line is the plain text it always was, with no context fields."""
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    stream = io.StringIO()
    log_one(console_handler(stream))
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING multichat\.test\.logs: Something happened\n",
        stream.getvalue(),
    )


def test_json_lines_have_time_level_logger_message_and_context(monkeypatch):
    """LOG_FORMAT=json: exactly the documented fields, the context's included."""
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    stream = io.StringIO()
    log_one(console_handler(stream))
    line = json.loads(stream.getvalue())
    assert set(line) == {"time", "level", "logger", "message", "request_id", "user_id"}
    assert line["level"] == "WARNING" and line["logger"] == "multichat.test.logs"
    assert line["message"] == "Something happened"
    assert (line["request_id"], line["user_id"]) == ("r1", 5)
    assert line["time"].endswith("+00:00")


def test_an_unknown_log_format_names_the_choices(monkeypatch):
    """LOG_FORMAT=xml fails at start-up, saying what is allowed."""
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured, match="plain, json"):
        logging_config()


def test_the_filter_redacts_secret_named_fields_and_drops_wire_traces():
    """extra={"token": ...} and a mapping's "text" are redacted; DEBUG wire traces are dropped."""
    guard = logcontext.ContextFilter()
    record = logging.LogRecord(
        "chat.x", logging.INFO, __file__, 1, "got %s", ({"text": "hi", "room": 3},), None
    )
    record.token = "s3cret"
    assert guard.filter(record)
    assert record.token == logcontext.REDACTED
    assert record.getMessage() == "got {'text': '[redacted]', 'room': 3}"
    trace = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, "< TEXT 'x'", (), None)
    assert not guard.filter(trace)
    info = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", (), None)
    assert guard.filter(info)
