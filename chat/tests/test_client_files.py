"""Files through the Python client and the ``multichat`` CLI, against a real server process."""

import asyncio
import io
import json
import os
import random
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest
from PIL import Image

from chat.tests.test_client import run_cli
from multichat_client import ChatClient, FileInfo, Message, MultichatError, RestClient
from multichat_client.files import CHUNK, human_size
from testkit import ROOT
from testkit.live import LiveServer

MAX_BYTES = 200_000  # small, so "too large" is cheap to send
QUOTA = 600_000  # per user and day; quinn alone spends it (alice stays far below)


@pytest.fixture(scope="module")
def server(database_url):
    """One server: alice, bob and quinn with tokens, and a room; small upload limits."""
    live = LiveServer(
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL"),
        extra_env={
            "CHAT_SEND_RATE": "0",
            "CHAT_UPLOAD_MAX_BYTES": str(MAX_BYTES),
            "CHAT_UPLOAD_QUOTA_BYTES_PER_DAY": str(QUOTA),
        },
    ).prepare()
    made = live.seed(
        users=["alice", "bob", "quinn"], rooms=["General"], tokens=["alice", "bob", "quinn"]
    )
    live.room_id = made.rooms["General"]
    live.tokens = made.tokens
    live.token = made.tokens["alice"]
    live.start()
    yield live
    live.stop()


def png(width: int, height: int, seed: int = 1) -> bytes:
    """A PNG of noise (fixed seed), so its size follows its pixels."""
    noise = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), noise).save(out, "PNG")
    return out.getvalue()


def cli_env(server: LiveServer, tmp_path, user: str = "alice") -> dict[str, str]:
    """The environment of a CLI run as ``user``: this server, that token, no config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTICHAT_")}
    env.update(
        HOME=str(tmp_path),
        MULTICHAT_CONFIG=str(tmp_path / "absent.toml"),
        MULTICHAT_URL=server.url,
        MULTICHAT_TOKEN=server.tokens[user],
        PYTHONUNBUFFERED="1",
    )
    return env


class CountedReads(io.FileIO):
    """A real file that remembers the largest read asked of it."""

    largest = 0

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        """Read, noting the size asked for (-1: the whole file)."""
        self.largest = max(self.largest, size if size >= 0 else 1 << 62)
        return super().read(size)


async def first_post(chat: ChatClient) -> Message:
    """The first stored post the client yields (enter notices and the rest skipped)."""
    async for event in chat:
        if isinstance(event, Message) and event.seq is not None:
            return event
    raise AssertionError("the client stopped")


async def test_upload_post_receive_and_download_through_the_client(server, tmp_path):
    """An image uploads streamed, posts over the socket with no text, arrives with its FileInfo
    on another client, and downloads byte for byte, thumbnail too."""
    room = await asyncio.to_thread(server.create_room, "Files (client)")
    image = png(300, 200)
    path = tmp_path / "shot.PNG"
    path.write_bytes(image)
    rest = RestClient(server.url, server.token)
    with CountedReads(path) as stream:
        info = await asyncio.to_thread(rest.upload, stream, name="shot.png")
    assert stream.largest == CHUNK  # read in blocks, never whole
    assert (info.name, info.type, info.size) == ("shot.png", "image/png", len(image))
    assert (info.width, info.height, info.thumb is not None) == (300, 200, True)
    got: list[Message] = []
    async with (
        ChatClient(server.url, server.tokens["bob"]) as bob,
        ChatClient(server.url, server.token) as alice,
    ):
        await bob.join(room)
        await alice.join(room)
        reader = asyncio.create_task(first_post(bob))
        seq = await alice.send(room, "", files=[info])
        event = await asyncio.wait_for(reader, 10)
        got.append(event)
        copy = tmp_path / "copy.png"
        assert await bob.download(event.files[0], copy) == len(image)
        assert copy.read_bytes() == image
    assert (got[0].seq, got[0].message, got[0].files) == (seq, "", (info,))
    thumb = io.BytesIO()
    bob_rest = RestClient(server.url, server.tokens["bob"])
    await asyncio.to_thread(bob_rest.download, info, thumb, thumb=True)
    assert thumb.getvalue()[:4] == b"RIFF" and thumb.getvalue()[8:12] == b"WEBP"
    history = await asyncio.to_thread(rest.history, room)
    assert [FileInfo.from_frame(f) for f in history["messages"][0]["files"]] == [info]


def test_posting_an_upload_that_is_not_yours_or_already_posted_stores_nothing(server, tmp_path):
    """FILE_INVALID for bob's upload posted by alice and for one posted twice; no seq is taken."""
    room = server.create_room("Files (invalid)")
    alice = RestClient(server.url, server.token)
    bob = RestClient(server.url, server.tokens["bob"])
    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    theirs = bob.upload(note)
    with pytest.raises(MultichatError) as refused:
        alice.post(room, "taking bob's", files=[theirs])
    assert (refused.value.code, refused.value.status) == ("FILE_INVALID", 404)
    mine = alice.upload(note)
    assert alice.post(room, "once", files=[mine.id])["seq"] == 1
    with pytest.raises(MultichatError) as again:
        alice.post(room, "twice", files=[mine])
    assert again.value.code == "FILE_INVALID"
    assert [m["message"] for m in alice.history(room)["messages"]] == ["once"]


def test_cli_send_files_without_text_and_history_lists_them(server, tmp_path):
    """`send ROOM --file A --file B` posts both in order; `history` prints name, size and URL."""
    room = server.create_room("Files (cli)")
    env = cli_env(server, tmp_path)
    (tmp_path / "graph.png").write_bytes(png(40, 30))
    (tmp_path / "notes.txt").write_text("three lines\nof\nnotes\n")
    done = run_cli(
        env,
        "send",
        str(room),
        "--file",
        str(tmp_path / "graph.png"),
        "--file",
        str(tmp_path / "notes.txt"),
    )
    assert (done.returncode, done.stdout.strip()) == (0, "sent to Files (cli) as #1 with 2 files")
    posted = RestClient(server.url, server.token).history(room)["messages"]
    assert [(f["name"], f["type"]) for f in posted[0]["files"]] == [
        ("graph.png", "image/png"),
        ("notes.txt", "text/plain"),
    ]
    assert posted[0]["message"] == ""
    shown = run_cli(env, "history", str(room))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("#1 ") and lines[0].endswith("alice: ")
    size = len(png(40, 30))
    url = urljoin(server.url, posted[0]["files"][0]["url"])
    assert lines[1] == f"    file: graph.png ({human_size(size)}) {url}"
    assert lines[2].startswith("    file: notes.txt (21 B) ")
    as_json = run_cli(env, "history", str(room), "--json")
    assert json.loads(as_json.stdout)["files"] == posted[0]["files"]


def test_cli_send_takes_text_from_stdin_with_a_file_and_prints_the_frame(server, tmp_path):
    """`send ROOM - --file F --json`: the text from standard input, the file, the stored frame."""
    room = server.create_room("Files (stdin)")
    (tmp_path / "log.txt").write_text("line\n")
    done = run_cli(
        cli_env(server, tmp_path),
        "send",
        str(room),
        "-",
        "--file",
        str(tmp_path / "log.txt"),
        "--json",
        stdin="see the log\n",
    )
    assert done.returncode == 0, done.stderr
    stored = json.loads(done.stdout)
    assert (stored["message"], [f["name"] for f in stored["files"]]) == ("see the log", ["log.txt"])


def test_cli_names_each_refused_file_and_posts_nothing(server, tmp_path):
    """Too large and a refused type: each file named with its reason, exit 1, nothing posted."""
    room = server.create_room("Files (refused)")
    env = cli_env(server, tmp_path)
    (tmp_path / "big.png").write_bytes(png(300, 300))  # about 270 kB: over MAX_BYTES
    (tmp_path / "blob.bin").write_bytes(random.Random(2).randbytes(4096))
    (tmp_path / "ok.txt").write_text("fine\n")
    done = run_cli(
        env,
        "send",
        str(room),
        "look",
        "--file",
        str(tmp_path / "ok.txt"),
        "--file",
        str(tmp_path / "big.png"),
        "--file",
        str(tmp_path / "blob.bin"),
    )
    assert done.returncode == 1
    assert f"{tmp_path / 'big.png'}: larger than the server accepts (FILE_TOO_LARGE" in done.stderr
    assert (
        f"{tmp_path / 'blob.bin'}: the server does not accept this type of file (FILE_TYPE_REFUSED"
        in done.stderr
    )
    assert "2 of 3 files were refused; nothing was posted" in done.stderr
    assert "ok.txt" not in done.stderr
    assert RestClient(server.url, server.token).history(room)["messages"] == []
    # The file the server took was discarded at once (DELETE /api/uploads/<id>), not left
    # for purge_files.
    stored = [p.name for p in (Path(server.data_dir) / "files").rglob("*") if p.is_file()]
    assert "ok.txt" not in stored


def test_cli_says_when_the_daily_quota_is_spent_and_when_to_try_again(server, tmp_path):
    """Over CHAT_UPLOAD_QUOTA_BYTES_PER_DAY: UPLOAD_QUOTA_EXCEEDED, with the wait, exit 1."""
    room = server.create_room("Files (quota)")
    env = cli_env(server, tmp_path, "quinn")
    picture = tmp_path / "p.png"
    picture.write_bytes(png(100, 100))
    posted = 0
    while True:  # each upload is about 30 kB: the quota of 600 kB ends within 25 tries
        done = run_cli(env, "send", str(room), "--file", str(picture))
        if done.returncode != 0:
            break
        posted += 1
        assert posted < 25, "the quota never ran out"
    assert done.returncode == 1
    assert "you have uploaded as much as the server allows in 24 hours; try again in" in (
        done.stderr
    )
    assert "UPLOAD_QUOTA_EXCEEDED" in done.stderr
    assert len(RestClient(server.url, server.tokens["quinn"]).history(room)["messages"]) == posted


def test_an_unposted_upload_is_404_to_anyone_but_its_uploader(server, tmp_path):
    """download: bob may not fetch alice's upload before she posts it (404, NOT_FOUND, as for
    a file that is not there); alice may, by FileInfo or url; a text file has no thumbnail."""
    alice = RestClient(server.url, server.token)
    note = tmp_path / "secret.txt"
    note.write_text("not for bob\n")
    unposted = alice.upload(note)
    bob = RestClient(server.url, server.tokens["bob"])
    with pytest.raises(MultichatError) as hidden:
        bob.download(unposted, tmp_path / "got.txt")
    assert (hidden.value.status, hidden.value.code) == (404, "NOT_FOUND")
    assert not (tmp_path / "got.txt").exists()  # nothing written for a refusal
    mine = io.BytesIO()
    assert alice.download(unposted.url, mine) == len("not for bob\n")
    with pytest.raises(ValueError, match="no thumbnail"):
        alice.download(unposted, io.BytesIO(), thumb=True)


async def test_cli_tail_lists_each_posts_files_under_it(server, tmp_path):
    """`multichat tail` prints a post, then a line per file: name, size, URL."""
    room = await asyncio.to_thread(server.create_room, "Files (tail)")
    rest = RestClient(server.url, server.token)
    note = tmp_path / "minutes.txt"
    note.write_text("minutes\n")
    info = await asyncio.to_thread(rest.upload, note)
    await asyncio.to_thread(rest.post, room, "the minutes", files=[info])
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "multichat_client",
        "tail",
        str(room),
        "--since",
        "0",
        cwd=ROOT,
        env=cli_env(server, tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert tail.stdout is not None
        first = await asyncio.wait_for(tail.stdout.readline(), 20)
        second = await asyncio.wait_for(tail.stdout.readline(), 20)
    finally:
        tail.terminate()
        await tail.wait()
    assert first.decode().rstrip("\n").endswith("alice: the minutes")
    assert second.decode().rstrip("\n") == (
        f"    file: minutes.txt (8 B) {urljoin(server.url, info.url)}"
    )
