"""Search through a real server process: the socket command, the Python client and the CLI."""

import json
import os

import pytest

from chat.tests.test_client import run_cli
from multichat_client import ChatClient, MultichatError
from testkit.live import LiveServer, next_frame, open_ws


@pytest.fixture(scope="module")
def server(database_url):
    """A real server with alice, staff stella, a room and a staff-only room, each with messages."""
    live = LiveServer(
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL"),
        extra_env={"CHAT_HISTORY_RATE": "0"},
    ).prepare()
    made = live.seed(
        users=["alice"],
        staff=["stella"],
        rooms=["General"],
        staff_rooms=["Staff lounge"],
        tokens=["alice", "stella"],
    )
    live.room_id = made.rooms["General"]
    live.staff_room_id = made.rooms["Staff lounge"]
    live.tokens = made.tokens
    live.testkit(
        "send",
        room_id=live.room_id,
        texts=["the quarterly report is out", "lunch at noon?", "report <b>bold</b> claims"],
        username="alice",
    )
    live.testkit(
        "send", room_id=live.staff_room_id, texts=["report: staff salaries"], username="stella"
    )
    live.start()
    yield live
    live.stop()


async def test_socket_search_finds_only_rooms_the_user_may_enter(server):
    """alice's socket finds General's reports, newest first, never the staff room's."""
    ws = await open_ws(server, "alice")
    try:
        await ws.send(json.dumps({"command": "search", "query": "report", "ref": 7}))
        reply = await next_frame(ws, lambda f: f.get("ref") == 7)
        assert [r["message"] for r in reply["search"]] == [
            "report <b>bold</b> claims",
            "the quarterly report is out",
        ]
        assert reply["next"] is None
        first = reply["search"][0]
        assert first["title"] == "General" and first["room"] == server.room_id
        assert first["snippet"] == "<mark>report</mark> &lt;b&gt;bold&lt;/b&gt; claims"
    finally:
        await ws.close()


async def test_socket_search_errors_echo_the_ref(server):
    """A staff room filter, an unknown field, room, author, a blank query: errors with the ref."""
    ws = await open_ws(server, "alice")
    try:
        frames = [
            {"command": "search", "query": "report", "room": server.staff_room_id, "ref": "a"},
            {"command": "search", "query": "x" * 201, "ref": "b"},
            {"command": "search", "query": "x", "colour": "red", "ref": "c"},
            {"command": "search", "query": "x", "room": "nope", "ref": "d"},
            {"command": "search", "query": "x", "author": "nobody", "ref": "e"},
            {"command": "search", "query": "", "ref": "f"},
        ]
        for frame in frames:
            await ws.send(json.dumps(frame))
        codes = {}
        for _ in frames:
            error = await next_frame(ws, lambda f: "error" in f)
            codes[error["ref"]] = error["error"]
        assert codes == {
            "a": "ROOM_ACCESS_DENIED",
            "b": "BAD_REQUEST",
            "c": "BAD_REQUEST",
            "d": "ROOM_INVALID",
            "e": "USER_INVALID",
            "f": "BAD_REQUEST",
        }
    finally:
        await ws.close()


async def test_python_client_searches_and_pages(server):
    """ChatClient.search pages with the cursor; staff find the staff room's message too."""
    async with ChatClient(server.url, server.tokens["alice"]) as chat:
        first, cursor = await chat.search("report", limit=1)
        second, last = await chat.search("report", limit=1, cursor=cursor)
        assert [r["message"] for r in first + second] == [
            "report <b>bold</b> claims",
            "the quarterly report is out",
        ]
        assert last is None
        with pytest.raises(MultichatError) as refused:
            await chat.search("report", room=server.staff_room_id)
        assert refused.value.code == "ROOM_ACCESS_DENIED"
    async with ChatClient(server.url, server.tokens["stella"]) as chat:
        found, _ = await chat.search("salaries")
        assert [r["title"] for r in found] == ["Staff lounge"]


def cli(server, tmp_path, user, *args):
    """Run ``multichat ARGS`` as ``user``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTICHAT_")}
    env.update(
        HOME=str(tmp_path),
        MULTICHAT_CONFIG=str(tmp_path / "absent.toml"),
        MULTICHAT_URL=server.url,
        MULTICHAT_TOKEN=server.tokens[user],
    )
    return run_cli(env, *args)


def test_cli_search_prints_matches_and_hides_staff_rooms(server, tmp_path):
    """`multichat search` lists alice's matches with room and seq, and no staff message."""
    done = cli(server, tmp_path, "alice", "search", "report")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and "salaries" not in done.stdout
    assert lines[0].startswith("General #3 ") and lines[0].endswith(
        "alice: report <b>bold</b> claims"
    )
    done = cli(server, tmp_path, "alice", "search", "salaries")
    assert (done.returncode, done.stdout.strip()) == (0, "(nothing found)")
    done = cli(server, tmp_path, "stella", "search", "report", "--room", "Staff lounge", "--json")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["message"] for line in done.stdout.splitlines()] == [
        "report: staff salaries"
    ]


def test_cli_search_filters_and_errors(server, tmp_path):
    """--author filters; a bad date is a clear error with exit status 1."""
    done = cli(server, tmp_path, "alice", "search", "report", "--author", "stella")
    assert (done.returncode, done.stdout.strip()) == (0, "(nothing found)")
    done = cli(server, tmp_path, "alice", "search", "lunch", "--after", "2000-01-01")
    assert done.returncode == 0 and "lunch at noon?" in done.stdout
    done = cli(server, tmp_path, "alice", "search", "lunch", "--after", "someday")
    assert done.returncode == 1 and "BAD_REQUEST" in done.stderr, done.stderr
