"""Attachments end to end against a real server process: raw HTTP for the size guard, real
sockets for posting, real GETs for serving (on PostgreSQL too, in its pass)."""

import asyncio
import contextlib
import io
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from testkit.live import LiveServer, join, next_frame, open_ws

LIMIT = 200_000  # CHAT_UPLOAD_MAX_BYTES of this module's server
BOUNDARY = "multichatboundary7d2f"


@pytest.fixture(scope="module")
def server(database_url):
    """One real server with a small upload limit, three users with tokens, and a room."""
    live = LiveServer(
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL"),
        extra_env={"CHAT_UPLOAD_MAX_BYTES": str(LIMIT), "CHAT_SEND_RATE": "0"},
    ).prepare()
    seeded = live.seed(
        users=["alice", "bob", "carol"], rooms=["General"], tokens=["alice", "bob", "carol"]
    )
    live.room_id = seeded.rooms["General"]
    live.tokens = seeded.tokens
    live.start()
    yield live
    live.stop()


def multipart(data: bytes, name: str = "shot.png") -> bytes:
    """A multipart/form-data body with one part, ``file``."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 16), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def request(server, method, path, *, token=None, body=None, content_type=None):
    """One HTTP request to the real server: (status, headers, body)."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(server.url + path.lstrip("/"), body, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def upload(server, user, data, name="shot.png"):
    status, _, body = request(
        server,
        "POST",
        "/api/uploads",
        token=server.tokens[user],
        body=multipart(data, name),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )
    return status, json.loads(body)


def raw_exchange(server, head: bytes, chunks=()) -> bytes:
    """Send ``head`` and then ``chunks`` on a raw connection (stopping when an answer
    comes); return the start of the answer."""
    with socket.create_connection((server.host, server.port), timeout=10) as conn:
        conn.sendall(head)
        conn.setblocking(False)
        answer = b""
        for chunk in chunks:
            with contextlib.suppress(BlockingIOError):
                answer += conn.recv(65536)
            if answer:
                break
            try:
                conn.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        conn.settimeout(10)
        while b"\r\n\r\n" not in answer:
            got = conn.recv(65536)
            if not got:
                break
            answer += got
        return answer


def test_a_content_length_over_the_limit_is_refused_before_the_body(server):
    """413 FILE_TOO_LARGE comes back though no byte of the body was sent."""
    head = (
        "POST /api/uploads HTTP/1.1\r\n"
        f"Host: {server.host}:{server.port}\r\n"
        f"Authorization: Bearer {server.tokens['alice']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {50 * LIMIT}\r\n\r\n"
    ).encode()
    answer = raw_exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"FILE_TOO_LARGE" in answer or b"content-length" in answer.lower()


def test_a_chunked_body_over_the_limit_is_cut_off(server):
    """Without Content-Length the body is counted as it comes: 413 once past the limit."""
    head = (
        "POST /api/uploads HTTP/1.1\r\n"
        f"Host: {server.host}:{server.port}\r\n"
        f"Authorization: Bearer {server.tokens['alice']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"a" * 32768
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer = raw_exchange(server, head, [chunk] * (4 * LIMIT // len(piece)))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_upload_under_the_limit_is_stored(server):
    """The guard lets a chunked upload under the limit through."""
    body = multipart(b"hello chunks", "c.txt")
    head = (
        "POST /api/uploads HTTP/1.1\r\n"
        f"Host: {server.host}:{server.port}\r\n"
        f"Authorization: Bearer {server.tokens['alice']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    answer = raw_exchange(server, head + chunked)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]


def test_a_file_just_over_the_limit_is_413_by_the_view(server):
    """A body within the guard's allowance whose file is over the limit: 413 from the view."""
    status, body = upload(server, "alice", b"a" * (LIMIT + 1), "big.txt")
    assert (status, body["error"]) == (413, "FILE_TOO_LARGE")


async def test_post_over_a_real_socket_serve_and_delete(server):
    """Upload, post over a socket, both sockets see the files, bob fetches them; after the
    deletion the frames lose them, the URL is 404 and the stored bytes are gone."""
    status, info = await asyncio.to_thread(upload, server, "alice", png(), "p.png")
    assert status == 201, info
    before = await asyncio.to_thread(
        request, server, "GET", info["url"], token=server.tokens["bob"]
    )
    assert before[0] == 404  # not posted yet: the uploader's alone
    async with await open_ws(server, "alice") as alice, await open_ws(server, "bob") as bob:
        for ws in (alice, bob):
            await join(ws, server.room_id)
        await alice.send(
            json.dumps(
                {"command": "send", "room": server.room_id, "message": "", "files": [info["id"]]}
            )
        )

        def has_files(frame):
            return bool(frame.get("files"))

        seen_a = await next_frame(alice, has_files)
        seen_b = await next_frame(bob, has_files)
        assert seen_a["files"] == seen_b["files"] == [info]
        status, headers, body = await asyncio.to_thread(
            request, server, "GET", info["url"], token=server.tokens["bob"]
        )
        assert (status, body) == (200, png())
        assert headers["Content-Disposition"] == "inline; filename*=UTF-8''p.png"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        thumb = await asyncio.to_thread(
            request, server, "GET", info["thumb"], token=server.tokens["carol"]
        )
        assert thumb[0] == 200 and thumb[1]["Content-Type"] == "image/webp"
        logged_out = await asyncio.to_thread(request, server, "GET", info["url"])
        assert logged_out[0] == 404

        seq = seen_a["seq"]
        status, _, _ = await asyncio.to_thread(
            request,
            server,
            "DELETE",
            f"/api/rooms/{server.room_id}/messages/{seq}",
            token=server.tokens["alice"],
        )
        assert status == 200
        change = await next_frame(bob, lambda f: f.get("change") == "delete")
        assert change["target"] == seq and "files" not in change
    gone = await asyncio.to_thread(request, server, "GET", info["url"], token=server.tokens["bob"])
    assert gone[0] == 404
    folder = Path(server.data_dir) / "files" / "files" / info["id"][:2] / info["id"]
    assert not folder.exists()
    async with await open_ws(server, "bob") as again:
        await again.send(json.dumps({"command": "join", "room": server.room_id, "since": seq - 1}))
        replayed = await next_frame(again, lambda f: f.get("seq") == seq)
        assert replayed["deleted"] and "files" not in replayed


def test_someone_elses_upload_is_file_invalid_over_rest(server):
    """bob may not post alice's upload: 404 FILE_INVALID, and the room's seq does not move."""
    _, info = upload(server, "alice", b"alice's", "a.txt")
    _, _, before = request(server, "GET", "/api/rooms", token=server.tokens["bob"])
    last = {r["id"]: r["last_seq"] for r in json.loads(before)["rooms"]}[server.room_id]
    status, _, body = request(
        server,
        "POST",
        f"/api/rooms/{server.room_id}/messages",
        token=server.tokens["bob"],
        body=json.dumps({"message": "mine now", "files": [info["id"]]}).encode(),
        content_type="application/json",
    )
    assert (status, json.loads(body)["error"]) == (404, "FILE_INVALID")
    _, _, after = request(server, "GET", "/api/rooms", token=server.tokens["bob"])
    assert {r["id"]: r["last_seq"] for r in json.loads(after)["rooms"]}[server.room_id] == last
